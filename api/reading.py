"""What every read handler shares: stored JSON spliced into an answer, its ``ETag``
(``If-None-Match`` answers 304, ``api.conditional``), freshness headers, and ready
answers (``api.ready``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from aiohttp import web

from api import ready
from api.conditional import etag_of, respond
from api.freshness import Freshness
from api.keys import CONFIG


def array(raws: Iterable[str]) -> str:
    return "[" + ",".join(raws) + "]"


def answer(
    fields: Mapping[str, str],
    freshness: Freshness,
    request: web.Request,
    *,
    tags: Iterable[ready.Tag] | None = None,
) -> web.Response:
    """A JSON object whose values are JSON texts already (stored raws, arrays of them).
    With ``tags`` (what it was built from), the answer is kept ready (``api.ready``)."""
    body = ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}").encode()
    tag = etag_of(body)
    if tags is not None:
        ready.keep(request, body, tag, freshness, tags)
    headers = freshness.headers(request.app[CONFIG].api.staleness_s)
    headers["ETag"] = tag
    return respond(request, body, headers)


def cursor_text(token: str | None) -> str:
    return json.dumps(token)
