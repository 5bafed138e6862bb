"""Conditional reads: an answer's strong ``ETag`` and ``If-None-Match``.

The ``ETag`` is strong: a digest of the body's bytes (BLAKE2b, 128 bits), so the same
answer has the same tag whether it was built just now or kept ready, on any replica.
``If-None-Match`` compares weakly, as RFC 9110 says (``W/`` ignored; ``*`` matches), and
a match answers 304 without a body, with the same headers.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

JSON = "application/json"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def respond(request: web.Request, body: bytes, headers: dict[str, str]) -> web.Response:
    """The 200 with ``body`` (JSON), or a 304 when the caller holds it already (its
    ``headers`` carry the ``ETag``); ``headers`` are copied, never changed."""
    if _none_match(request.headers.get("If-None-Match"), headers["ETag"]):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=JSON, headers=headers)


def _none_match(header: str | None, etag: str) -> bool:
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False
