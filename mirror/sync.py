"""One sync pass: reference data, then every staff calendar in scope, then the staff
members reconciliation found bookings moved to, then (unless only some staff members
were asked for) each store's dispatch queue (``mirror.store_queue``); ``booxi-mirror
sync`` runs one."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from mirror.booxi_errors import BooxiError, BooxiUnavailable
from mirror.client import BooxiClient
from mirror.poller import (
    StaffPoll,
    Window,
    poll_staff_calendar,
    record_staff_failure,
    refresh_reference_data,
)
from mirror.store_queue import QueuePoll, poll_store_queue
from storage import reference
from storage.times import utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)

CONCURRENCY = 4  # staff polled at once; the rate budget is what really paces them
UNREACHABLE_AFTER = 3  # consecutive "unavailable" failures before the pass stops trying


@dataclasses.dataclass
class PassResult:
    merchants: list[int] = dataclasses.field(default_factory=list)
    polls: list[StaffPoll] = dataclasses.field(default_factory=list)
    queues: list[QueuePoll] = dataclasses.field(default_factory=list)
    reference_error: str | None = None
    duration_s: float = 0.0

    @property
    def failures(self) -> list[StaffPoll]:
        return [p for p in self.polls if p.error]

    @property
    def ok(self) -> bool:
        """Reference data and calendars synced. A queue poll Booxi refused is not a
        failure of the pass (the queue is kept by webhooks then): ``queue_failures``."""
        return self.reference_error is None and not self.failures

    @property
    def queue_failures(self) -> list[QueuePoll]:
        return [q for q in self.queues if q.error]


async def staff_in_scope(
    engine: AsyncEngine, merchant_ids: Sequence[int], staff_ids: Sequence[int]
) -> list[tuple[int, int | None]]:
    async with engine.connect() as conn:
        staff = await conn.run_sync(reference.staff_ids, merchant_ids)
    if staff_ids:
        wanted = set(staff_ids)
        staff = [s for s in staff if s[0] in wanted]
    return staff


async def run_pass(
    client: BooxiClient,
    writer: Writer,
    engine: AsyncEngine,
    *,
    horizon_days: int,
    merchant_ids: Sequence[int] = (),
    staff_ids: Sequence[int] = (),
    on_staff: Callable[[int, int], None] | None = None,
) -> PassResult:
    """Sync everything in scope once. ``on_staff(done, total)`` reports progress.

    Each staff member's window is taken when their poll starts: a long pass must not
    ask Booxi for a start it no longer serves (more than 7 days back)."""
    started = time.perf_counter()
    result = PassResult()
    try:
        result.merchants = await refresh_reference_data(client, writer, merchant_ids)
    except BooxiError as error:
        result.reference_error = f"{type(error).__name__}: {error}"
        log.warning("sync.reference_failed", extra={"error": result.reference_error})
    scope = merchant_ids or result.merchants
    staff = await staff_in_scope(engine, scope, staff_ids)
    total = len(staff)
    done = 0
    unreachable = 0
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def poll(staff_id: int, merchant_id: int | None) -> StaffPoll:
        nonlocal done, unreachable
        async with semaphore:
            if unreachable >= UNREACHABLE_AFTER:
                outcome = await _skip(writer, staff_id, merchant_id)
            else:
                outcome = await poll_staff_calendar(
                    client,
                    writer,
                    staff_id,
                    Window.around(utcnow(), horizon_days),
                    merchant_id=merchant_id,
                )
                unreachable = unreachable + 1 if _unreachable(outcome) else 0
        done += 1
        if on_staff is not None:
            on_staff(done, total)
        return outcome

    result.polls = list(await asyncio.gather(*(poll(s, m) for s, m in staff)))
    in_scope = {s for s, _ in staff}
    moved = sorted({m for p in result.polls for m in p.moved_to if m in in_scope})
    merchants = dict(staff)
    for staff_id in moved:  # their calendars changed since they were polled in this pass
        result.polls.append(
            await poll_staff_calendar(
                client,
                writer,
                staff_id,
                Window.around(utcnow(), horizon_days),
                merchant_id=merchants.get(staff_id),
            )
        )
    if not staff_ids:
        for merchant_id in scope:
            if unreachable >= UNREACHABLE_AFTER:
                break
            window = Window.around(utcnow(), horizon_days)
            result.queues.append(await poll_store_queue(client, writer, merchant_id, window))
    result.duration_s = round(time.perf_counter() - started, 2)
    log.info(
        "sync.pass.done",
        extra={
            "merchants": len(result.merchants),
            "staff": total,
            "repolled": len(moved),
            "failures": len(result.failures),
            "duration_s": result.duration_s,
        },
    )
    return result


def _unreachable(poll: StaffPoll) -> bool:
    return poll.error is not None and poll.error.startswith("BooxiUnavailable")


async def _skip(writer: Writer, staff_id: int, merchant_id: int | None) -> StaffPoll:
    """Booxi looks unreachable: note the staff member as not synced, without a call."""
    error = BooxiUnavailable("not tried: Booxi was unreachable for the staff polled before")
    described = await record_staff_failure(writer, staff_id, error, merchant_id=merchant_id)
    return StaffPoll(staff_id, error=described)
