"""What every read handler shares: stored JSON spliced into an answer, freshness headers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from aiohttp import web

from api.freshness import Freshness
from api.keys import CONFIG


def array(raws: Iterable[str]) -> str:
    return "[" + ",".join(raws) + "]"


def answer(fields: Mapping[str, str], freshness: Freshness, request: web.Request) -> web.Response:
    """A JSON object whose values are JSON texts already (stored raws, arrays of them)."""
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"
    headers = freshness.headers(request.app[CONFIG].api.staleness_s)
    return web.Response(body=body.encode(), content_type="application/json", headers=headers)


def cursor_text(token: str | None) -> str:
    return json.dumps(token)
