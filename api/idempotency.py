"""``Idempotency-Key`` on the write-through routes: one write to Booxi per key.

A write carrying the header (1 to 200 printable ASCII characters; 400 otherwise) claims
the key for the caller's API key name, the method, the path with its query, and the
SHA-256 of the body's canonical JSON (key order and spacing do not matter), before it
goes to Booxi. Then:

- a repeat of the same request gets the first answer again (status, ``Content-Type``,
  body) with ``Idempotent-Replayed: true``, and Booxi is not called;
- the same key for a different request is 422: the request is well-formed but
  contradicts what the key was used for (as Stripe and the IETF idempotency-key draft
  answer);
- a repeat while the first is still with Booxi, or after it was interrupted before
  Booxi answered, is 409 (the outcome is unknown: the caller checks it, then uses a new
  key).

Answers are kept 24 hours (older keys are purged whenever a key is claimed), Booxi's
4xx and 5xx included, since the request may have taken effect. Two answers free the key
instead: Booxi unreachable (nothing came back) and Booxi's 429 (it did not act). A
timeout after Booxi received the request cannot be told from a lost request, so a
repeat is then sent again; for a booking, Booxi's own conflict check (the staff member
is no longer free) stops a double. Refusals by the mirror itself (400, 403, 404) free
the key too. Kept answers can hold a client's personal data and go with the purge.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Connection

from api.booxi_shape import BooxiShapedError, bad_request
from storage import idempotency
from storage.idempotency import StoredResult
from storage.times import utcnow

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_KEY = re.compile(r"[\x20-\x7e]{1,200}")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One write's ``Idempotency-Key``, for the caller's API key name."""

    principal: str
    key: str
    method: str
    path: str
    body_sha256: str

    def take(self, conn: Connection) -> StoredResult | None:
        """Claim the key (a writer job): None if claimed now, else what holds it."""
        now = utcnow()
        idempotency.purge_older_than(conn, now - idempotency.KEEP)
        if idempotency.record_pending(
            conn,
            principal=self.principal,
            key=self.key,
            method=self.method,
            path=self.path,
            body_sha256=self.body_sha256,
            now=now,
        ):
            return None
        found = idempotency.find_result(conn, self.principal, self.key)
        if found is None:  # given back by another replica meanwhile: as if in flight
            return StoredResult(
                principal=self.principal,
                key=self.key,
                method=self.method,
                path=self.path,
                body_sha256=self.body_sha256,
                status=None,
                content_type=None,
                body=None,
                created_at=now,
            )
        return found

    def keep(self, conn: Connection, status: int, content_type: str | None, body: bytes) -> None:
        """Keep Booxi's answer (a writer job); a 429 gives the key back instead."""
        if status == 429:
            self.release(conn)
            return
        # Booxi answers JSON (UTF-8); a stray invalid byte would be replaced in replays
        text = body.decode("utf-8", errors="replace")
        idempotency.store_result(
            conn, self.principal, self.key, status=status, content_type=content_type, body=text
        )

    def release(self, conn: Connection) -> None:
        """Give the key back (a writer job): Booxi never got or never acted on the request."""
        idempotency.delete_pending(conn, self.principal, self.key)

    def replay(self, held: StoredResult) -> web.Response:
        """The kept answer for a repeat; ``BooxiShapedError`` 422 or 409 otherwise."""
        if (held.method, held.path, held.body_sha256) != (
            self.method,
            self.path,
            self.body_sha256,
        ):
            raise BooxiShapedError(
                422, f"this {HEADER} was used for a different request: use a new key"
            )
        if held.status is None:
            raise BooxiShapedError(
                409,
                f"a request with this {HEADER} is still in progress, or was interrupted "
                "before Booxi answered: check its outcome, then use a new key",
            )
        headers = {REPLAYED: "true"}
        if held.content_type:
            headers["Content-Type"] = held.content_type
        return web.Response(status=held.status, body=(held.body or "").encode(), headers=headers)


def claim_for(request: web.Request, principal: str, body: bytes | None) -> Claim | None:
    """The request's claim, or None without the header; 400 for a malformed key.

    ``body`` is the request's JSON object as bytes (already checked), None for none.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise bad_request(f"{HEADER} must be 1 to 200 printable ASCII characters")
    canonical = b"" if body is None else _canonical(json.loads(body))
    return Claim(
        principal, key, request.method, request.path_qs, hashlib.sha256(canonical).hexdigest()
    )


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
