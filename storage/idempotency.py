"""Results of writes sent with an ``Idempotency-Key``: claimed, then kept 24 hours.

A request claims its key with ``record_pending`` (a row without ``status``) before it
goes to Booxi, and ``store_result`` fills in Booxi's answer. ``delete_pending`` gives
the key back when Booxi never answered. Synchronous functions of a ``Connection``, run
by the writer; the caller decides what a found row means (replay, in flight, misuse).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from storage import pii
from storage.dialect import insert
from storage.models import IdempotencyResult, table_of

IDEMPOTENCY = table_of(IdempotencyResult)
KEEP = dt.timedelta(hours=24)


@dataclasses.dataclass(frozen=True)
class StoredResult:
    """One claimed key: the request it was claimed for and, once answered, the answer
    (``status`` None: still with Booxi, or interrupted before it answered)."""

    principal: str
    key: str
    method: str
    path: str
    body_sha256: str
    status: int | None
    content_type: str | None
    body: str | None
    created_at: dt.datetime

    def same_request(self, method: str, path: str, body_sha256: str) -> bool:
        return (self.method, self.path, self.body_sha256) == (method, path, body_sha256)


def find_result(conn: Connection, principal: str, key: str) -> StoredResult | None:
    row = (
        conn.execute(
            select(IDEMPOTENCY).where(
                IDEMPOTENCY.c.principal == principal, IDEMPOTENCY.c.key == key
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else StoredResult(**row)


def record_pending(
    conn: Connection,
    *,
    principal: str,
    key: str,
    method: str,
    path: str,
    body_sha256: str,
    now: dt.datetime,
) -> bool:
    """Claim ``key`` for this request; False if the key is held already (by any request).

    ``INSERT ... ON CONFLICT DO NOTHING``, so two replicas claiming at once cannot both win.
    """
    result = conn.execute(
        insert(conn, IDEMPOTENCY)
        .values(
            principal=principal,
            key=key,
            method=method,
            path=path,
            body_sha256=body_sha256,
            status=None,
            content_type=None,
            body=None,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount == 1)


def store_result(
    conn: Connection,
    principal: str,
    key: str,
    *,
    status: int,
    content_type: str | None,
    body: str,
) -> None:
    """Keep Booxi's answer for a claimed key (its ``created_at`` stays the claim's),
    stripped of personal data the mirror must not keep."""
    body = strip_blocked_body(conn, body)
    conn.execute(
        update(IDEMPOTENCY)
        .where(IDEMPOTENCY.c.principal == principal, IDEMPOTENCY.c.key == key)
        .values(status=status, content_type=content_type, body=body)
    )


def delete_pending(conn: Connection, principal: str, key: str) -> None:
    """Give a claimed key back (Booxi never answered); an answered key is kept."""
    conn.execute(
        delete(IDEMPOTENCY).where(
            IDEMPOTENCY.c.principal == principal,
            IDEMPOTENCY.c.key == key,
            IDEMPOTENCY.c.status.is_(None),
        )
    )


def purge_older_than(conn: Connection, cutoff: dt.datetime) -> int:
    """Forget keys claimed before ``cutoff``, answered or not; how many."""
    result = conn.execute(delete(IDEMPOTENCY).where(IDEMPOTENCY.c.created_at < cutoff))
    return int(result.rowcount or 0)


def strip_blocked_body(conn: Connection, body: str) -> str:
    """Booxi's answer without the personal data of blocked bookings and clients."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    bookings, clients = _ids(data)
    if pii.blocked(conn, "booking", bookings) or pii.blocked(conn, "client", clients):
        return pii.dump(pii.strip_any(data))
    return body


def _ids(data: object) -> tuple[set[str], set[str]]:
    bookings: set[str] = set()
    clients: set[str] = set()
    if isinstance(data, dict):
        booking = data.get("booking")
        if "bookingId" in data:  # Booxi's answer may be the bare booking
            booking = data
        elif "id" in data and "client" not in data:  # or the bare client
            clients.add(str(data.get("id")))
        if isinstance(booking, dict):
            bookings.add(str(booking.get("bookingId")))
            client = booking.get("client")
            if isinstance(client, dict):
                clients.add(str(client.get("id")))
        client = data.get("client")
        if isinstance(client, dict):
            clients.add(str(client.get("id")))
    return bookings, clients
