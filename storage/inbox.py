"""The webhook inbox: every authenticated call as received, with its outcome."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from storage import pii
from storage.dialect import insert_ignoring_conflicts
from storage.models import InboxEvent, table_of
from storage.rows import Json

INBOX = table_of(InboxEvent)


# Made once: every webhook batch asks (building the select per call cost more than it).
_EXISTING = select(INBOX.c.event_id).where(INBOX.c.event_id.in_(bindparam("ids", expanding=True)))


def existing_event_ids(conn: Connection, event_ids: Iterable[str]) -> set[str]:
    ids = list(dict.fromkeys(event_ids))
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(conn.execute(_EXISTING, {"ids": ids[start : start + 500]}).scalars())
    return found


def count_duplicates(conn: Connection, event_ids: Sequence[str]) -> None:
    for event_id in event_ids:
        conn.execute(
            update(INBOX)
            .where(INBOX.c.event_id == event_id)
            .values(duplicates=INBOX.c.duplicates + 1)
        )


def store_events(conn: Connection, rows: Sequence[Json]) -> None:
    """Keep events as received, stripped of the personal data the mirror must not keep."""
    strip_blocked_events(conn, rows)
    insert_ignoring_conflicts(conn, INBOX, rows)


def strip_blocked_events(conn: Connection, rows: Sequence[Json]) -> None:
    bookings, clients = pii.blocked_bookings_and_clients(
        conn, (r["booking_id"] for r in rows), (r["client_id"] for r in rows)
    )
    for row in rows:
        if row["booking_id"] in bookings or str(row["client_id"]) in clients:
            row["body"] = strip_body(row["body"])


def strip_body(body: str) -> str:
    try:
        event = json.loads(body)
    except ValueError:
        return ""
    if isinstance(event, dict):
        pii.strip_event(event)
    return pii.dump(event)


def find_latest_received_at(conn: Connection) -> dt.datetime | None:
    """When the newest event in the inbox arrived; None if the inbox is empty."""
    latest: dt.datetime | None = conn.execute(select(func.max(INBOX.c.received_at))).scalar()
    return latest
