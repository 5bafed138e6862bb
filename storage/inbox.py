"""The webhook inbox: every authenticated call as received, with its outcome."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from storage.dialect import insert_ignoring_conflicts
from storage.models import InboxEvent
from storage.rows import Json

INBOX = InboxEvent.__table__  # type: ignore[attr-defined]


def existing_event_ids(conn: Connection, event_ids: Iterable[str]) -> set[str]:
    ids = list(dict.fromkeys(event_ids))
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        result = conn.execute(
            select(INBOX.c.event_id).where(INBOX.c.event_id.in_(ids[start : start + 500]))
        )
        found.update(result.scalars())
    return found


def count_duplicates(conn: Connection, event_ids: Sequence[str]) -> None:
    for event_id in event_ids:
        conn.execute(
            update(INBOX)
            .where(INBOX.c.event_id == event_id)
            .values(duplicates=INBOX.c.duplicates + 1)
        )


def store_events(conn: Connection, rows: Sequence[Json]) -> None:
    insert_ignoring_conflicts(conn, INBOX, rows)


def find_latest_received_at(conn: Connection) -> dt.datetime | None:
    """When the newest event in the inbox arrived; None if the inbox is empty."""
    latest: dt.datetime | None = conn.execute(select(func.max(INBOX.c.received_at))).scalar()
    return latest
