"""What every read handler shares: stored JSON spliced into an answer, its ``ETag``
(``If-None-Match`` answers 304), freshness headers, and ready answers (``api.ready``).

The ``ETag`` is strong: a digest of the body's bytes (BLAKE2b, 128 bits), so the same
answer has the same tag whether it was built just now or kept ready, on any replica.
``If-None-Match`` compares weakly, as RFC 9110 says (``W/`` ignored; ``*`` matches).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from aiohttp import web

from api import ready
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
    return respond(request, body, tag, freshness)


def respond(request: web.Request, body: bytes, etag: str, freshness: Freshness) -> web.Response:
    """The 200 with ``body``, or a 304 when the caller holds it already; both with the
    ``ETag`` and the freshness headers of now."""
    headers = freshness.headers(request.app[CONFIG].api.staleness_s)
    headers["ETag"] = etag
    if _none_match(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _none_match(header: str | None, etag: str) -> bool:
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def cursor_text(token: str | None) -> str:
    return json.dumps(token)
