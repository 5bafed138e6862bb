"""Polling a store's dispatch queue: the appointment requests no calendar shows.

Booxi's calendar is per staff member, so a request no one has taken yet is on no
calendar and the staff polls never see it. ``poll_store_queue`` lists the store's
appointments (``GET /booking`` with ``merchantId``, ``from``, ``to`` and
``bookingMethod=Appointment``, no ``clientId``: ``BooxiClient.iter_store_bookings``)
over the poll window, stores them as a poll does (a booking gives way only to a version
at least as new), and reconciles: a request the mirror holds in the store's queue over
that window that Booxi no longer listed is looked up (``GET /booking/{id}``) and stored
as Booxi has it now. The sync state ``queue:<merchantId>`` says how fresh the queue is.

Each page is stored as it comes, in a transaction of its own, and only the ids listed
are kept until the listing ends: a store's listing is every appointment over the poll
window, thousands, and held whole (as it was) it made a burst of some 60,000 Python
objects per poll and one long transaction that webhooks waited behind (5-minute
``bench.soak`` runs: webhook p99 0.7 to 0.9 s, ``serve``'s memory creeping 3.6 to 6.5
MB a minute after such bursts; page by page 0.3 to 0.5 s and +1.7 to +2.5).

**choice**: a listing that fails part-way keeps the pages it stored (each is Booxi's
as it was read, and gives way to newer), and records the failure; what was not listed
is not reconciled until a listing completes.

Cost: one listing per store per ``calendar_interval_s`` (pages of Booxi's size), through
the one rate budget at the poll priority, on the leading replica only (the scheduler's
jobs run there alone). **choice**: Booxi may refuse the listing without ``clientId``
(400, the ``booking-list-client-only`` dialect); then the failure is recorded, the poll
backs off as a failing staff poll does (a 400 costs Booxi's quota double), and the queue
is kept by webhooks, writes and the staff polls alone, its answers marked stale.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from sqlalchemy.engine import Connection

from mirror import answers
from mirror.answers import Json
from mirror.booxi_errors import BooxiError
from mirror.budget import Priority
from mirror.client import BooxiClient
from mirror.fill import chunks
from mirror.poller import Window, elapsed_ms, failure_job, reconcile_booking
from storage import bookings, store_queue, sync_state
from storage.rows import booking_row, group_event_row
from storage.times import utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)

KIND = "queue"


@dataclasses.dataclass
class QueuePoll:
    """What one queue poll did."""

    merchant_id: int
    bookings: int = 0
    queued: int = 0
    looked_up: int = 0
    error: str | None = None
    duration_ms: float = 0.0


async def poll_store_queue(
    client: BooxiClient, writer: Writer, merchant_id: int, window: Window, *, fill: bool = False
) -> QueuePoll:
    """Refresh one store's bookings over ``window`` and reconcile its queue.

    ``fill=True``: a first-demand fill for the read API, at the fill priority; a failure
    is recorded as a poll's is (so reads do not ask again), then ``BooxiError`` raised."""
    started = time.perf_counter()
    attempted = utcnow()
    result = QueuePoll(merchant_id)
    priority = Priority.FILL if fill else Priority.POLL
    source = "fill" if fill else "poll"
    listed: set[str] = set()
    try:
        for lo, hi in chunks(window.start, window.end):
            async for page in client.iter_store_bookings(
                merchant_id, start=lo, end=hi, booking_methods=("Appointment",), priority=priority
            ):
                found = [
                    b
                    for b in answers.items(page, "bookings")
                    if isinstance(b, dict) and b.get("merchantId") == merchant_id
                ]
                ids, queued = await writer.run(_save_page(found, page, source))
                listed.update(ids)
                result.bookings += len(ids)
                result.queued += queued
    except BooxiError as error:
        result.error = f"{type(error).__name__}: {error}"
        await writer.run(
            failure_job(
                store_queue.queue_scope(merchant_id),
                KIND,
                attempted,
                result.error,
                merchant_id=merchant_id,
            )
        )
        log.warning("poll.queue.failed", extra={"merchant_id": merchant_id, "error": result.error})
        if fill:
            raise
        result.duration_ms = elapsed_ms(started)
        return result
    start_key, end_key = window.keys()

    def finish(conn: Connection) -> list[str]:
        missing = store_queue.queued_not_returned(
            conn, merchant_id, start_key, end_key, listed, attempted
        )
        sync_state.record_success(
            conn,
            store_queue.queue_scope(merchant_id),
            kind=KIND,
            attempted_at=attempted,
            window=(window.start, window.end),
            merchant_id=merchant_id,
        )
        return missing

    missing = await writer.run(finish)
    for booking_id in missing:
        await reconcile_booking(client, writer, booking_id)
        result.looked_up += 1
    result.duration_ms = elapsed_ms(started)
    log.info(
        "poll.queue.done",
        extra={
            "merchant_id": merchant_id,
            "bookings": result.bookings,
            "queued": result.queued,
            "looked_up": result.looked_up,
            "duration_ms": result.duration_ms,
        },
    )
    return result


def _save_page(
    found: list[Json], page: Json, source: str
) -> Callable[[Connection], tuple[list[str], int]]:
    """The writer's job for one page: its bookings stored as a poll stores them (a booking
    gives way only to a version at least as new; a calendar's events rewritten only for
    what changed: the rest are the staff polls' to keep) and its group events; returns
    the page's booking ids and how many of them belong in a queue."""

    def save(conn: Connection) -> tuple[list[str], int]:
        now = utcnow()
        rows = [booking_row(b, source, now) for b in found]
        before = bookings.stored_versions(conn, (r["booking_id"] for r in rows))
        written = bookings.upsert_bookings(conn, rows, strictly_newer=False)
        changed = {
            r["booking_id"]
            for r in rows
            if r["booking_id"] in written and before.get(r["booking_id"]) != r["modified_on"]
        }
        bookings.replace_derived_events(
            conn, [b for b in found if b["bookingId"] in changed], source=source, now=now
        )
        bookings.upsert_group_events(
            conn, [group_event_row(g, source, now) for g in answers.items(page, "groupEvents")]
        )
        return [r["booking_id"] for r in rows], len(store_queue.queued_ids(rows))

    return save
