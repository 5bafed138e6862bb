"""Drop and rebuild staff calendars (``booxi-mirror resync``).

Reference data is refreshed first, for the stores concerned: it lists the staff members
to rebuild and shows Booxi answers, so nothing is dropped while Booxi is unreachable.
Then the mirror's rows of every staff member in scope over the current window are
dropped in one transaction (``storage.resync.drop_staff_window``), and each calendar is
polled again, within the shared rate budget. A staff member Booxi no longer lists is
reported, not dropped. If Booxi fails part-way, the staff members not rebuilt are
reported (their sync state says so too) and ``booxi-mirror sync`` finishes the job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from mirror.audit import servable
from mirror.booxi_errors import BooxiError, BooxiUnavailable
from mirror.client import BooxiClient
from mirror.poller import (
    StaffPoll,
    Window,
    poll_staff_calendar,
    record_staff_failure,
    refresh_reference_data,
)
from mirror.sync import CONCURRENCY, UNREACHABLE_AFTER, staff_in_scope
from storage import resync
from storage.errors import UserError
from storage.times import utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)


class ResyncError(UserError):
    """Nothing was dropped: the reference data could not be refreshed."""


@dataclasses.dataclass
class ResyncResult:
    staff: list[int] = dataclasses.field(default_factory=list)
    dropped: resync.Dropped = dataclasses.field(default_factory=resync.Dropped)
    polls: list[StaffPoll] = dataclasses.field(default_factory=list)
    not_listed: list[int] = dataclasses.field(default_factory=list)
    duration_s: float = 0.0

    @property
    def failures(self) -> list[StaffPoll]:
        return [p for p in self.polls if p.error]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.not_listed


async def resync_staff(
    client: BooxiClient,
    writer: Writer,
    engine: AsyncEngine,
    *,
    horizon_days: int,
    merchant_ids: Sequence[int] = (),
    staff_ids: Sequence[int] = (),
    on_staff: Callable[[int, int], None] | None = None,
) -> ResyncResult:
    """Rebuild the calendars of ``staff_ids``, else of the stores ``merchant_ids``, else
    of every store (``on_staff(done, total)`` reports progress)."""
    started = time.perf_counter()
    result = ResyncResult()
    stores = list(merchant_ids)
    if staff_ids:
        known = dict(await staff_in_scope(engine, (), staff_ids))
        if set(staff_ids) <= set(known) and None not in known.values():
            stores = sorted({m for m in known.values() if m is not None})
    try:
        listed = await refresh_reference_data(client, writer, stores)
    except BooxiError as error:
        raise ResyncError(
            f"Booxi failed refreshing reference data, nothing dropped: "
            f"{type(error).__name__}: {error}"
        ) from None
    staff = await staff_in_scope(engine, stores or listed, staff_ids)
    result.staff = [s for s, _ in staff]
    result.not_listed = sorted(set(staff_ids) - set(result.staff))
    window = Window.around(utcnow(), horizon_days)
    start, end = window.keys()

    def drop(conn: Connection) -> resync.Dropped:
        total = resync.Dropped()
        for staff_id in result.staff:
            dropped = resync.drop_staff_window(conn, staff_id, start, end)
            for field in dataclasses.fields(total):
                setattr(
                    total, field.name, getattr(total, field.name) + getattr(dropped, field.name)
                )
        return total

    result.dropped = await writer.run(drop)
    result.polls = await _rebuild(client, writer, staff, window, on_staff)
    result.duration_s = round(time.perf_counter() - started, 2)
    log.info(
        "resync.done",
        extra={
            "staff": len(result.staff),
            "dropped_bookings": result.dropped.bookings,
            "dropped_events": result.dropped.events,
            "dropped_time_slots": result.dropped.time_slots,
            "bookings": sum(p.bookings for p in result.polls),
            "events": sum(p.events for p in result.polls),
            "failures": len(result.failures),
            "not_listed": len(result.not_listed),
            "duration_s": result.duration_s,
        },
    )
    return result


async def _rebuild(
    client: BooxiClient,
    writer: Writer,
    staff: Sequence[tuple[int, int | None]],
    window: Window,
    on_staff: Callable[[int, int], None] | None,
) -> list[StaffPoll]:
    """Poll each staff member; once Booxi looks unreachable, the rest are noted as failed
    without a call (as a sync pass does). A long rebuild polls from as far back as Booxi
    still serves."""
    semaphore = asyncio.Semaphore(CONCURRENCY)
    unreachable = 0
    done = 0

    async def poll(staff_id: int, merchant_id: int | None) -> StaffPoll:
        nonlocal unreachable, done
        async with semaphore:
            if unreachable >= UNREACHABLE_AFTER:
                error = BooxiUnavailable("not tried: Booxi was unreachable for the staff before")
                described = await record_staff_failure(
                    writer, staff_id, error, merchant_id=merchant_id
                )
                outcome = StaffPoll(staff_id, error=described)
            else:
                outcome = await poll_staff_calendar(
                    client, writer, staff_id, servable(window), merchant_id=merchant_id
                )
                down = outcome.error is not None and outcome.error.startswith("BooxiUnavailable")
                unreachable = unreachable + 1 if down else 0
        done += 1
        if on_staff is not None:
            on_staff(done, len(staff))
        return outcome

    polls = list(await asyncio.gather(*(poll(s, m) for s, m in staff)))
    merchants = dict(staff)
    moved = sorted({m for p in polls for m in p.moved_to if m in merchants})
    for staff_id in moved:  # their calendars changed since they were rebuilt
        polls.append(
            await poll_staff_calendar(
                client, writer, staff_id, servable(window), merchant_id=merchants[staff_id]
            )
        )
    return polls
