"""Repairing what an audit found (``booxi-mirror audit --repair``).

Every staff member a difference concerns (the mirror's and Booxi's, when a booking
moved) is polled over the audited window: ``poll_staff_calendar`` upserts what Booxi
returns (a row of the same version too, so one edited behind the mirror's back is
rewritten) and reconciles what is gone. As in a sync pass, staff members that
reconciliation moved bookings to are polled once more afterwards: polled at the same
time as the staff member a booking left, they can keep a provisional event of it.
Rows of the same version that Booxi's answer still differs from are then rewritten at
that version, and those staff members audited again. A ``newer_version`` is left as
it is: a poll never rolls a version back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from mirror.audit import AuditResult, Difference, Progress, audit, servable
from mirror.client import BooxiClient
from mirror.poller import StaffPoll, Window, poll_staff_calendar
from mirror.sync import CONCURRENCY, staff_in_scope
from storage import pii, resync
from storage.rows import booking_row
from storage.times import utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RepairResult:
    before: AuditResult
    after: AuditResult | None
    polls: list[StaffPoll]
    rewritten: int = 0

    @property
    def failures(self) -> list[StaffPoll]:
        return [p for p in self.polls if p.error]

    @property
    def repaired(self) -> int:
        """Differences found before that the audit after no longer finds."""
        if self.after is None:
            return 0
        left = {(d.object, d.id) for d in self.after.differences}
        return sum((d.object, d.id) not in left for d in self.before.differences)

    @property
    def left(self) -> list[Difference]:
        return self.after.differences if self.after is not None else self.before.differences


async def repair(
    client: BooxiClient,
    writer: Writer,
    engine: AsyncEngine,
    found: AuditResult,
    *,
    on_staff: Progress | None = None,
    on_recheck: Progress | None = None,
) -> RepairResult:
    """Fix what ``found`` lists: poll the staff members concerned, rewrite same-version
    rows that still differ, audit those staff members again (``after``)."""
    concerned: set[int] = set()
    for diff in found.differences:
        for side in (diff.mirror, diff.booxi):
            if side is not None and isinstance(side.get("staff_id"), int):
                concerned.add(side["staff_id"])
    if not concerned:
        return RepairResult(found, found, [])
    merchants = dict(await staff_in_scope(engine, (), ()))
    window = found.window
    polls = await _poll_all(client, writer, sorted(concerned), merchants, window, on_staff)
    moved = sorted({s for p in polls for s in p.moved_to})
    for staff_id in moved:  # their calendars changed while they were polled (as in a pass)
        polls.append(
            await poll_staff_calendar(
                client, writer, staff_id, servable(window), merchant_id=merchants.get(staff_id)
            )
        )
    concerned |= set(moved)
    rows = [
        booking_row(d.booxi_booking, "poll", utcnow())
        for d in found.differences
        if d.booxi_booking is not None
        and d.kind in ("content_differs", "status_differs")
        and d.mirror is not None
        and d.booxi is not None
        and d.mirror["modified_on"] == d.booxi["modified_on"]
    ]

    def rewrite(conn: Connection) -> int:
        pii.strip_blocked_booking_rows(conn, rows)
        return len(resync.rewrite_bookings(conn, rows))

    rewritten = await writer.run(rewrite) if rows else 0
    result = RepairResult(found, None, polls, rewritten)
    if not result.failures:
        result.after = await audit(client, engine, sorted(concerned), window, on_staff=on_recheck)
    log.info(
        "audit.repair.done",
        extra={
            "staff": len(concerned),
            "repaired": result.repaired,
            "left": len(result.left),
            "rewritten": rewritten,
            "failures": len(result.failures),
        },
    )
    return result


async def _poll_all(
    client: BooxiClient,
    writer: Writer,
    staff_ids: Sequence[int],
    merchants: dict[int, int | None],
    window: Window,
    on_staff: Progress | None,
) -> list[StaffPoll]:
    semaphore = asyncio.Semaphore(CONCURRENCY)
    done = 0

    async def poll(staff_id: int) -> StaffPoll:
        nonlocal done
        async with semaphore:
            outcome = await poll_staff_calendar(
                client, writer, staff_id, servable(window), merchant_id=merchants.get(staff_id)
            )
        done += 1
        if on_staff is not None:
            on_staff(done, len(staff_ids))
        return outcome

    return list(await asyncio.gather(*(poll(s) for s in staff_ids)))
