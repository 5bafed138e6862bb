"""What every read handler shares: stored JSON spliced into an answer, freshness headers,
one fill at a time per scope."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping

from aiohttp import web

from api.freshness import Freshness
from api.keys import CONFIG, FILL_LOCKS


def array(raws: Iterable[str]) -> str:
    return "[" + ",".join(raws) + "]"


def answer(fields: Mapping[str, str], freshness: Freshness, request: web.Request) -> web.Response:
    """A JSON object whose values are JSON texts already (stored raws, arrays of them)."""
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"
    headers = freshness.headers(request.app[CONFIG].api.staleness_s)
    return web.Response(body=body.encode(), content_type="application/json", headers=headers)


def cursor_text(token: str | None) -> str:
    return json.dumps(token)


def fill_lock(request: web.Request, scope: str) -> asyncio.Lock:
    """One fill per scope at a time: a burst of first reads fetches from Booxi once."""
    locks: dict[str, asyncio.Lock] = request.app[FILL_LOCKS]
    if scope not in locks:
        locks[scope] = asyncio.Lock()
    return locks[scope]
