"""Polling Booxi: reference data, and each staff member's calendar with reconciliation.

Plain async functions (the scheduler and ``booxi-mirror sync`` call them): fetch with
the Booxi client, then save in one transaction through the storage writer.

Reconciliation: whatever the mirror holds in a staff member's polled window that Booxi
no longer returned was cancelled, moved or reassigned; it is looked up with
``GET /booking/{id}`` and stored as Booxi has it now (a booking Booxi no longer knows
is removed). A poll never overwrites what a webhook wrote while the poll ran: bookings
only give way to a version at least as new, and rows written after the poll began are
never removed by it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy.engine import Connection

from mirror import answers
from mirror.booxi_errors import BooxiError, BooxiNotFound
from mirror.budget import Priority
from mirror.client import BooxiClient
from storage import bookings, coverage, reference, sync_state
from storage.rows import (
    Json,
    booking_row,
    calendar_event_row,
    group_event_row,
    merchant_row,
    service_category_row,
    service_row,
    staff_row,
    time_slot_row,
)
from storage.times import instant_key, utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)

BOOXI_PAST_LIMIT = dt.timedelta(days=7)
PAST_MARGIN = dt.timedelta(minutes=1)  # clock skew: never ask for more than Booxi allows
REFERENCE_SCOPE = "reference"


@dataclasses.dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def around(cls, now: dt.datetime, horizon_days: int) -> Window:
        """``[now - 7 days, now + horizon]``: as far back as Booxi's calendar allows."""
        return cls(now - BOOXI_PAST_LIMIT + PAST_MARGIN, now + dt.timedelta(days=horizon_days))

    def keys(self) -> tuple[str, str]:
        return instant_key(self.start), instant_key(self.end)


@dataclasses.dataclass
class StaffPoll:
    """What one staff poll did."""

    staff_id: int
    events: int = 0
    bookings: int = 0
    removed_events: int = 0
    looked_up: int = 0
    moved_to: set[int] = dataclasses.field(default_factory=set)
    error: str | None = None
    duration_ms: float = 0.0


async def refresh_reference_data(
    client: BooxiClient, writer: Writer, merchant_ids: Sequence[int] = ()
) -> list[int]:
    """Stores, staff, services and categories; the ids of the stores mirrored."""
    attempted = utcnow()
    try:
        if merchant_ids:
            merchants = [await client.get_merchant(m) for m in merchant_ids]
        else:
            merchants = [m async for m in client.iter_merchants()]
        listing: list[tuple[Json, list[Json], list[Json], list[Json]]] = []
        for merchant in merchants:
            mid = merchant["id"]
            staff = [s async for s in client.iter_staff(merchant_id=mid)]
            services = [s async for s in client.iter_services(merchant_id=mid)]
            categories = [c async for c in client.iter_service_categories(merchant_id=mid)]
            listing.append((merchant, staff, services, categories))
    except BooxiError as error:
        await writer.run(failure_job(REFERENCE_SCOPE, "reference", attempted, _describe(error)))
        raise

    def save(conn: Connection) -> None:
        now = utcnow()
        for merchant, staff, services, categories in listing:
            reference.upsert_merchants(conn, [merchant_row(merchant, "poll", now)])
            reference.upsert_staff(conn, [staff_row(s, "poll", now) for s in staff])
            reference.upsert_services(conn, [service_row(s, "poll", now) for s in services])
            reference.upsert_service_categories(
                conn, [service_category_row(c, "poll", now) for c in categories]
            )
            reference.remove_staff_not_listed(conn, merchant["id"], {s["id"] for s in staff})
        sync_state.record_success(conn, REFERENCE_SCOPE, kind="reference", attempted_at=attempted)

    await writer.run(save)
    ids = [m["id"] for m, *_ in listing]
    log.info(
        "poll.reference.done",
        extra={"merchants": len(ids), "staff": sum(len(s) for _, s, _, _ in listing)},
    )
    return ids


async def poll_staff_calendar(
    client: BooxiClient,
    writer: Writer,
    staff_id: int,
    window: Window,
    *,
    merchant_id: int | None = None,
    source: str = "poll",
) -> StaffPoll:
    """Refresh one staff member's calendar over ``window`` and reconcile what is gone.

    ``source="fill"``: a first-demand fill for the read API, at the fill priority; it
    records coverage of the range but leaves the staff member's poll state alone, and
    raises ``BooxiError`` instead of recording a failure.
    """
    started = time.perf_counter()
    attempted = utcnow()
    result = StaffPoll(staff_id)
    filling = source == "fill"
    priority = Priority.FILL if filling else Priority.POLL
    try:
        pages = [
            page
            async for page in client.iter_calendar(
                staff_id, window.start, window.end, priority=priority
            )
        ]
    except BooxiError as error:
        if filling:
            raise
        result.error = await record_staff_failure(
            writer, staff_id, error, merchant_id=merchant_id, attempted=attempted
        )
        result.duration_ms = elapsed_ms(started)
        return result

    start_key, end_key = window.keys()

    def save(conn: Connection) -> list[str]:
        now = utcnow()
        booking_rows = [booking_row(b, source, now) for p in pages for b in p.get("bookings") or []]
        written = bookings.upsert_bookings(conn, booking_rows, strictly_newer=False)
        newer_here = {row["booking_id"] for row in booking_rows} - written
        event_rows = [
            calendar_event_row(e, source, now) for p in pages for e in p.get("calendarEvents") or []
        ]
        bookings.upsert_calendar_events(
            conn, [e for e in event_rows if e["booking_id"] not in newer_here]
        )
        result.removed_events = bookings.delete_events_not_returned(
            conn, staff_id, start_key, end_key, {e["id"] for e in event_rows}, attempted
        )
        slots = [time_slot_row(s, source, now) for p in pages for s in p.get("timeSlots") or []]
        bookings.upsert_time_slots(conn, slots)
        bookings.delete_time_slots_not_returned(
            conn, staff_id, start_key, end_key, {s["id"] for s in slots}, attempted
        )
        bookings.upsert_group_events(
            conn,
            [group_event_row(g, source, now) for p in pages for g in p.get("groupEvents") or []],
        )
        reference.upsert_services(
            conn, [service_row(s, source, now) for p in pages for s in p.get("services") or []]
        )
        staff = [s for p in pages for s in answers.objects(p, "staff") if s.get("id") == staff_id]
        if staff:
            reference.upsert_staff(conn, [staff_row(staff[-1], source, now)])
        result.events, result.bookings = (
            len(event_rows),
            len({r["booking_id"] for r in booking_rows}),
        )
        missing = bookings.live_bookings_not_returned(
            conn, staff_id, start_key, end_key, {r["booking_id"] for r in booking_rows}, attempted
        )
        scope = sync_state.staff_scope(staff_id)
        if filling:
            coverage.record_fill(conn, scope, start_key, end_key, now)
            return missing
        coverage.record_poll(conn, scope, start_key, end_key, now)
        sync_state.record_success(
            conn,
            scope,
            kind="staff",
            attempted_at=attempted,
            window=(window.start, window.end),
            merchant_id=merchant_id,
            staff_id=staff_id,
        )
        return missing

    missing = await writer.run(save)
    for booking_id in missing:
        moved = await reconcile_booking(client, writer, booking_id)
        result.looked_up += 1
        if moved is not None and moved != staff_id:
            result.moved_to.add(moved)
    result.duration_ms = elapsed_ms(started)
    log.info(
        "poll.staff.done",
        extra={
            "staff_id": staff_id,
            "events": result.events,
            "bookings": result.bookings,
            "removed_events": result.removed_events,
            "looked_up": result.looked_up,
            "duration_ms": result.duration_ms,
        },
    )
    return result


async def reconcile_booking(client: BooxiClient, writer: Writer, booking_id: str) -> int | None:
    """Store what Booxi says of a booking now; its staff member (None if gone or unknown)."""
    try:
        answer = await client.get_booking(booking_id)
    except BooxiNotFound:
        await writer.run(lambda conn: bookings.delete_booking(conn, booking_id))
        log.info("poll.booking.gone", extra={"booking_id": booking_id})
        return None
    except BooxiError as error:  # left as it is; the next pass tries again
        log.warning(
            "poll.booking.lookup_failed",
            extra={"booking_id": booking_id, "error": _describe(error)},
        )
        return None
    booking, groups = answers.booking_of(answer)
    if booking is None:
        log.warning("poll.booking.unreadable", extra={"booking_id": booking_id})
        return None

    def save(conn: Connection) -> None:
        now = utcnow()
        written = bookings.upsert_bookings(
            conn, [booking_row(booking, "poll", now)], strictly_newer=False
        )
        if written:
            bookings.replace_derived_events(conn, [booking], source="poll", now=now)
        bookings.upsert_group_events(conn, [group_event_row(g, "poll", now) for g in groups])

    await writer.run(save)
    staff = booking.get("staffId")
    return staff if isinstance(staff, int) else None


async def record_staff_failure(
    writer: Writer,
    staff_id: int,
    error: BooxiError,
    *,
    merchant_id: int | None = None,
    attempted: dt.datetime | None = None,
) -> str:
    """Note a failed staff poll (what the mirror had stays); the error as recorded."""
    described = _describe(error)
    job = failure_job(
        sync_state.staff_scope(staff_id),
        "staff",
        attempted or utcnow(),
        described,
        merchant_id,
        staff_id,
    )
    await writer.run(job)
    log.warning("poll.staff.failed", extra={"staff_id": staff_id, "error": described})
    return described


def failure_job(
    scope: str,
    kind: str,
    attempted: dt.datetime,
    error: str,
    merchant_id: int | None = None,
    staff_id: int | None = None,
) -> Callable[[Connection], int]:
    def job(conn: Connection) -> int:
        return sync_state.record_failure(
            conn,
            scope,
            kind=kind,
            attempted_at=attempted,
            error=error,
            merchant_id=merchant_id,
            staff_id=staff_id,
        )

    return job


def _describe(error: BooxiError) -> str:
    return f"{type(error).__name__}: {error}"


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
