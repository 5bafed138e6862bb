"""Bookings and calendar events: versioned upserts, window replacement, lookups.

A booking is replaced only by a version at least as new (``modifiedOn``): a poll may
rewrite the same version, a webhook only a strictly newer one, so an old or replayed
event never undoes a newer state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.engine import Connection

from storage import pii
from storage.dialect import upsert
from storage.models import Booking, CalendarEvent, GroupEvent, TimeSlot, table_of
from storage.rows import Json, calendar_event_row, derived_calendar_events

BOOKING = table_of(Booking)
EVENT = table_of(CalendarEvent)
GROUP_EVENT = table_of(GroupEvent)
TIME_SLOT = table_of(TimeSlot)


def stored_versions(conn: Connection, booking_ids: Iterable[str]) -> dict[str, str]:
    """``modified_on`` of the bookings the mirror holds among ``booking_ids``."""
    ids = list(dict.fromkeys(booking_ids))
    found: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        result = conn.execute(
            select(BOOKING.c.booking_id, BOOKING.c.modified_on).where(
                BOOKING.c.booking_id.in_(ids[start : start + 500])
            )
        )
        found.update({row.booking_id: row.modified_on for row in result})
    return found


def _strictly_newer(excluded: Any) -> Any:
    return BOOKING.c.modified_on < excluded.modified_on


def _not_older(excluded: Any) -> Any:
    return BOOKING.c.modified_on <= excluded.modified_on


def upsert_bookings(conn: Connection, rows: Sequence[Json], *, strictly_newer: bool) -> set[str]:
    """Store booking rows unless the mirror holds a newer version; the ids written."""

    latest: dict[str, Json] = {}
    for row in rows:  # one version per booking: the newest given
        kept = latest.get(row["booking_id"])
        if kept is None or row["modified_on"] >= kept["modified_on"]:
            latest[row["booking_id"]] = row
    pii.strip_blocked_booking_rows(conn, list(latest.values()))
    written = upsert(
        conn,
        BOOKING,
        list(latest.values()),
        ["booking_id"],
        only_if=_strictly_newer if strictly_newer else _not_older,
        returning="booking_id",
    )
    return set(written)


# Made once: every webhook batch runs them (building them per call cost more than they).
_KNOWN_EVENT_IDS = (
    select(EVENT.c.id, EVENT.c.booking_id)
    .where(EVENT.c.booking_id.in_(bindparam("ids", expanding=True)))
    .where(EVENT.c.id > 0)
    .order_by(EVENT.c.booking_id, EVENT.c.starts_on, EVENT.c.id)
)
_DELETE_EVENTS_OF = delete(EVENT).where(EVENT.c.booking_id.in_(bindparam("ids", expanding=True)))


def replace_derived_events(
    conn: Connection, bookings: Sequence[Json], *, source: str, now: dt.datetime
) -> set[str]:
    """Rebuild the calendar events of bookings seen outside a poll, keeping known ids.

    Returns the bookings (by id) that now have a provisional event (a negative id, until
    a poll brings Booxi's own: ``storage.rows.derived_calendar_events``)."""
    if not bookings:
        return set()
    ids = [b["bookingId"] for b in bookings]
    known: dict[str, list[int]] = {booking_id: [] for booking_id in ids}
    for found in conn.execute(_KNOWN_EVENT_IDS, {"ids": ids}):
        known[found.booking_id].append(found.id)
    conn.execute(_DELETE_EVENTS_OF, {"ids": ids})
    rows = []
    provisional: set[str] = set()
    for booking in bookings:
        for event in derived_calendar_events(booking, known[booking["bookingId"]]):
            row = calendar_event_row(event, source, now)
            row["provisional"] = True
            rows.append(row)
            if event["id"] < 0:
                provisional.add(booking["bookingId"])
    upsert(conn, EVENT, rows, ["id"])
    return provisional


def upsert_calendar_events(conn: Connection, rows: Sequence[Json]) -> None:
    upsert(conn, EVENT, rows, ["id"])


def delete_events_not_returned(
    conn: Connection,
    staff_id: int,
    start: str,
    end: str,
    keep: set[int],
    synced_before: dt.datetime,
) -> int:
    """Drop this staff member's events in ``[start, end]`` that a poll no longer returned
    (unless written after the poll began: a webhook is newer than the poll)."""
    result = conn.execute(
        select(EVENT.c.id).where(
            EVENT.c.staff_id == staff_id,
            EVENT.c.starts_on <= end,
            EVENT.c.ends_on >= start,
            EVENT.c.synced_at < synced_before,
        )
    )
    gone = [event_id for event_id in result.scalars() if event_id not in keep]
    for start_index in range(0, len(gone), 500):
        conn.execute(delete(EVENT).where(EVENT.c.id.in_(gone[start_index : start_index + 500])))
    return len(gone)


def live_bookings_not_returned(
    conn: Connection,
    staff_id: int,
    start: str,
    end: str,
    returned: set[str],
    synced_before: dt.datetime,
) -> list[str]:
    """Live bookings the mirror places in this window that a poll did not return."""
    result = conn.execute(
        select(BOOKING.c.booking_id).where(
            BOOKING.c.staff_id == staff_id,
            BOOKING.c.status != "Cancelled",
            BOOKING.c.starts_on <= end,
            BOOKING.c.ends_on >= start,
            BOOKING.c.synced_at < synced_before,
        )
    )
    return sorted(set(result.scalars()) - returned)


def delete_booking(conn: Connection, booking_id: str) -> None:
    conn.execute(delete(EVENT).where(EVENT.c.booking_id == booking_id))
    conn.execute(delete(BOOKING).where(BOOKING.c.booking_id == booking_id))


def upsert_group_events(conn: Connection, rows: Sequence[Json]) -> None:
    upsert(conn, GROUP_EVENT, rows, ["id"])


def upsert_time_slots(conn: Connection, rows: Sequence[Json]) -> None:
    upsert(conn, TIME_SLOT, rows, ["id"])


def delete_time_slots_not_returned(
    conn: Connection,
    staff_id: int,
    start: str,
    end: str,
    keep: set[int],
    synced_before: dt.datetime,
) -> None:
    conn.execute(
        delete(TIME_SLOT).where(
            and_(
                TIME_SLOT.c.staff_id == staff_id,
                TIME_SLOT.c.starts_on <= end,
                TIME_SLOT.c.ends_on >= start,
                TIME_SLOT.c.synced_at < synced_before,
                TIME_SLOT.c.id.not_in(keep) if keep else TIME_SLOT.c.id.is_not(None),
            )
        )
    )


def booking_staff(conn: Connection, booking_ids: Iterable[str]) -> dict[str, int | None]:
    ids = list(booking_ids)
    if not ids:
        return {}
    result = conn.execute(
        select(BOOKING.c.booking_id, BOOKING.c.staff_id).where(BOOKING.c.booking_id.in_(ids))
    )
    return {row.booking_id: row.staff_id for row in result}


def with_calendar_events(conn: Connection, booking_ids: Iterable[str]) -> set[str]:
    """Those of ``booking_ids`` that have calendar events in the mirror."""
    ids = list(booking_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        result = conn.execute(
            select(EVENT.c.booking_id).where(EVENT.c.booking_id.in_(ids[start : start + 500]))
        )
        found.update(result.scalars())
    return found
