"""A staff member's calendar window as the mirror holds it: read for an audit, rewritten
where it drifted, or dropped before a resync rebuilds it.

Windows are ``[start, end]`` in ``storage.times.instant_key`` form, matched as the
poller matches them: a row belongs to a window when it overlaps it, a live booking is
one whose status is not ``Cancelled``. Reads take a ``Connection`` that writes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.engine import Connection

from storage.coverage import COVERAGE, client_scope
from storage.dialect import upsert
from storage.models import Booking, CalendarEvent, SyncState, TimeSlot, table_of
from storage.rows import Json
from storage.sync_state import staff_scope

BOOKING = table_of(Booking)
EVENT = table_of(CalendarEvent)
TIME_SLOT = table_of(TimeSlot)
SYNC_STATE = table_of(SyncState)
CHUNK = 500
BOOKING_FIELDS = (
    "booking_id",
    "merchant_id",
    "staff_id",
    "client_id",
    "method",
    "status",
    "starts_on",
    "ends_on",
    "modified_on",
    "group_event_id",
    "raw",
)
EVENT_FIELDS = ("id", "staff_id", "booking_id", "starts_on", "ends_on", "type", "provisional")


def list_window_bookings(
    conn: Connection, staff_ids: Sequence[int], start: str, end: str
) -> list[Json]:
    """Live bookings of these staff members overlapping ``[start, end]``, as stored."""
    columns = [BOOKING.c[name] for name in BOOKING_FIELDS]
    rows: list[Json] = []
    for ids in _chunks(staff_ids):
        result = conn.execute(
            select(*columns).where(
                BOOKING.c.staff_id.in_(ids),
                BOOKING.c.status != "Cancelled",
                BOOKING.c.starts_on <= end,
                BOOKING.c.ends_on >= start,
            )
        )
        rows += [dict(row) for row in result.mappings()]
    return rows


def list_bookings(conn: Connection, booking_ids: Iterable[str]) -> dict[str, Json]:
    """The stored rows of those of ``booking_ids`` the mirror holds, whatever their state."""
    columns = [BOOKING.c[name] for name in BOOKING_FIELDS]
    found: dict[str, Json] = {}
    for ids in _chunks(booking_ids):
        result = conn.execute(select(*columns).where(BOOKING.c.booking_id.in_(ids)))
        found.update({row["booking_id"]: dict(row) for row in result.mappings()})
    return found


def list_window_events(
    conn: Connection, staff_ids: Sequence[int], start: str, end: str
) -> list[Json]:
    """Calendar events of these staff members overlapping ``[start, end]`` (no ``raw``)."""
    columns = [EVENT.c[name] for name in EVENT_FIELDS]
    rows: list[Json] = []
    for ids in _chunks(staff_ids):
        result = conn.execute(
            select(*columns).where(
                EVENT.c.staff_id.in_(ids), EVENT.c.starts_on <= end, EVENT.c.ends_on >= start
            )
        )
        rows += [dict(row) for row in result.mappings()]
    return rows


def list_events(conn: Connection, event_ids: Iterable[int]) -> dict[int, Json]:
    """Those of ``event_ids`` the mirror holds, wherever they are (no ``raw``)."""
    columns = [EVENT.c[name] for name in EVENT_FIELDS]
    found: dict[int, Json] = {}
    for ids in _chunks(event_ids):
        result = conn.execute(select(*columns).where(EVENT.c.id.in_(ids)))
        found.update({row["id"]: dict(row) for row in result.mappings()})
    return found


def rewrite_bookings(conn: Connection, rows: Sequence[Json]) -> set[str]:
    """Store booking rows over a stored row of the same version (``modified_on`` equal)
    that differs from them, or where the mirror holds none; the ids written. Never
    replaces a newer or an older version."""
    return set(
        upsert(
            conn, BOOKING, list(rows), ["booking_id"], only_if=_differing, returning="booking_id"
        )
    )


def _differing(excluded: Any) -> Any:
    changed = [BOOKING.c[name].is_distinct_from(excluded[name]) for name in BOOKING_FIELDS]
    return and_(BOOKING.c.modified_on == excluded.modified_on, or_(*changed))


@dataclasses.dataclass
class Dropped:
    """What ``drop_staff_window`` removed."""

    bookings: int = 0
    events: int = 0
    time_slots: int = 0
    coverage: int = 0


def drop_staff_window(conn: Connection, staff_id: int, start: str, end: str) -> Dropped:
    """Forget what the mirror holds of a staff member's ``[start, end]``, for a rebuild.

    Removed: the calendar events and time slots overlapping the window; the bookings of
    this staff member starting in it (cancelled ones included), with their events
    wherever they are; the staff member's coverage (``poll`` and ``fill``) and sync
    state, so nothing claims the window is held until a poll brings it back. Bookings
    outside the window stay. The history coverage of the clients of removed bookings is
    removed too: their histories are no longer complete, and are fetched again on demand.
    """
    dropped = Dropped()
    result = conn.execute(
        select(BOOKING.c.booking_id, BOOKING.c.client_id).where(
            BOOKING.c.staff_id == staff_id,
            BOOKING.c.starts_on >= start,
            BOOKING.c.starts_on <= end,
        )
    )
    found = list(result)
    booking_ids = [row.booking_id for row in found]
    clients = sorted({row.client_id for row in found if row.client_id is not None})
    for ids in _chunks(booking_ids):
        dropped.events += _count(conn.execute(delete(EVENT).where(EVENT.c.booking_id.in_(ids))))
        dropped.bookings += _count(
            conn.execute(delete(BOOKING).where(BOOKING.c.booking_id.in_(ids)))
        )
    dropped.events += _count(
        conn.execute(
            delete(EVENT).where(
                EVENT.c.staff_id == staff_id, EVENT.c.starts_on <= end, EVENT.c.ends_on >= start
            )
        )
    )
    dropped.time_slots = _count(
        conn.execute(
            delete(TIME_SLOT).where(
                TIME_SLOT.c.staff_id == staff_id,
                TIME_SLOT.c.starts_on <= end,
                TIME_SLOT.c.ends_on >= start,
            )
        )
    )
    scope = staff_scope(staff_id)
    dropped.coverage = _count(
        conn.execute(
            delete(COVERAGE).where(COVERAGE.c.scope == scope, COVERAGE.c.kind.in_(["poll", "fill"]))
        )
    )
    for ids in _chunks(clients):
        conn.execute(delete(COVERAGE).where(COVERAGE.c.scope.in_([client_scope(c) for c in ids])))
    conn.execute(delete(SYNC_STATE).where(SYNC_STATE.c.scope == scope))
    return dropped


def _count(result: Any) -> int:
    return max(int(result.rowcount or 0), 0)


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    items = list(dict.fromkeys(values))
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
