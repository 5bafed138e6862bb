"""The poll schedule of ``booxi-mirror serve`` (APScheduler): jobs only call ``poller.*``.

``serve`` runs a ``Poller`` only while its replica leads (``mirror.leader``): a new one
each time leadership is acquired, stopped when it is lost, so exactly one replica on a
database polls. Other replicas keep none; nothing outside ``serve`` calls it.

- Reference data every ``reference_interval_s``, first at start; after each run the
  staff jobs are brought in line with the staff Booxi lists.
- One job per staff member every ``calendar_interval_s``, their first runs spread
  evenly over one interval, so the budget is used steadily instead of in bursts.
- A staff member whose polls fail is retried later and later (the interval doubled per
  failure in a row, at most 4 intervals); the first success after failures wakes every
  failing staff member, so the mirror catches up as soon as Booxi is back.
- A booking that reconciliation finds moved to another staff member gets that staff
  member polled at once.
- One job per store every ``calendar_interval_s`` for its dispatch queue
  (``mirror.store_queue``: the requests no staff member has taken, on no calendar),
  kept in line with the stores after each reference run, backing off as a staff poll
  does when it fails (Booxi may refuse that listing).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncEngine

from mirror import privacy
from mirror.booxi_errors import BooxiError
from mirror.client import BooxiClient
from mirror.config import SyncConfig
from mirror.poller import Window, poll_staff_calendar, refresh_reference_data
from mirror.store_queue import poll_store_queue
from mirror.sync import staff_in_scope
from storage import store_queue, sync_state
from storage.times import utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)

REFERENCE_JOB = "reference"
RETENTION_INTERVAL_S = 6 * 3600
MAX_BACKOFF_INTERVALS = 4


def backoff_s(failures: int, interval_s: float) -> float:
    """How long after a failed attempt the next one waits."""
    if failures <= 0:
        return 0.0
    return float(min(interval_s * 2 ** (failures - 1), interval_s * MAX_BACKOFF_INTERVALS))


class Poller:
    """Owns the scheduler and what its jobs need."""

    def __init__(
        self, client: BooxiClient, writer: Writer, engine: AsyncEngine, sync: SyncConfig
    ) -> None:
        self.client = client
        self.writer = writer
        self.engine = engine
        self.sync = sync
        self.scheduler = AsyncIOScheduler(timezone=dt.UTC)
        self._merchants: dict[int, int | None] = {}
        self._failing: set[int] = set()
        self._running: set[asyncio.Task[object]] = set()
        self._stopping = False

    def start(self, *, retention_days: int | None = None) -> None:
        """Schedule the jobs; with ``retention_days``, retention too (every 6 hours, the
        first a minute after start)."""
        if retention_days is not None:
            self.scheduler.add_job(
                self.enforce_retention,
                "interval",
                seconds=RETENTION_INTERVAL_S,
                args=[retention_days],
                id="retention",
                max_instances=1,
                coalesce=True,
                next_run_time=utcnow() + dt.timedelta(minutes=1),
            )
        self.scheduler.add_job(
            self.refresh_reference,
            "interval",
            seconds=self.sync.reference_interval_s,
            id=REFERENCE_JOB,
            next_run_time=utcnow(),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(self.sync.reference_interval_s),
        )
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def stop(self) -> None:
        """Start no more jobs, cancel the running ones and wait until they have ended.

        Cutting a poll short is safe: each of its transactions commits whole or not at
        all, and the next start polls again. A job cancelled here ends quietly.
        """
        self._stopping = True
        running = set(self._running)
        self.shutdown()  # APScheduler cancels the jobs still running
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
            log.info("poll.stopped", extra={"cancelled_jobs": len(running)})

    @contextlib.contextmanager
    def _adding(self) -> Iterator[None]:
        """Many jobs added or moved at once: the scheduler paused meanwhile, then resumed.
        A running APScheduler looks for due jobs after every ``add_job`` and ``modify``
        (a callback on the event loop each): a chain's 10,000 staff jobs made 10,000 of
        them. Paused, it looks once, at ``resume``. (Only a pause made here is undone: a
        scheduler found paused stays so.)"""
        running = self.scheduler.state == STATE_RUNNING
        if running:
            self.scheduler.pause()
        try:
            yield
        finally:
            if running and self.scheduler.state == STATE_PAUSED:
                self.scheduler.resume()

    @contextlib.contextmanager
    def _job(self) -> Iterator[None]:
        """Around each job: tracked for ``stop()``; cancelled by ``stop()``, it returns
        instead of raising (APScheduler would log the cancellation as a failure)."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            if task is not None:
                self._running.discard(task)

    async def enforce_retention(self, days: int) -> None:
        with self._job():
            await privacy.enforce_retention(self.writer, days)

    async def refresh_reference(self) -> None:
        with self._job():
            await self._refresh_reference()

    async def _refresh_reference(self) -> None:
        try:
            merchants = await refresh_reference_data(
                self.client, self.writer, list(self.sync.merchant_ids)
            )
        except BooxiError:
            merchants = list(self.sync.merchant_ids)  # keep polling what the mirror knows
        staff = await staff_in_scope(self.engine, merchants, ())
        await self.schedule_staff(staff)
        await self.schedule_queues(merchants)

    async def schedule_queues(self, merchant_ids: Sequence[int]) -> None:
        """One queue job per store, spread over the interval; stale jobs removed."""
        await self._keep_jobs(
            store_queue.SCOPE_PREFIX, sorted(set(merchant_ids)), self.poll_queue, shift=0.5
        )

    async def _keep_jobs(
        self,
        prefix: str,
        wanted: Sequence[int],
        run: Callable[[int], Awaitable[None]],
        *,
        shift: float = 0.0,
    ) -> int:
        """One ``run(id)`` job (id ``prefix`` + id) per wanted id, every calendar interval,
        the new ones' first runs spread over one interval (at ``index + shift`` of
        ``len(new)`` parts); jobs of this prefix no longer wanted removed. How many were
        added."""
        interval = self.sync.calendar_interval_s
        keep = set(wanted)
        held = {job.id: job for job in self.scheduler.get_jobs()}
        new = [i for i in wanted if f"{prefix}{i}" not in held]
        now = utcnow()
        every = IntervalTrigger(seconds=interval, timezone=dt.UTC)  # stateless: shared
        slices = _Slices()
        with self._adding():
            for job_id, job in held.items():
                if job_id.startswith(prefix) and int(job_id[len(prefix) :]) not in keep:
                    await slices.turn()
                    job.remove()
            for index, ident in enumerate(new):
                await slices.turn()
                self.scheduler.add_job(
                    run,
                    every,
                    args=[ident],
                    id=f"{prefix}{ident}",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=int(interval),
                    next_run_time=now + dt.timedelta(seconds=interval * (index + shift) / len(new)),
                )
        return len(new)

    async def poll_queue(self, merchant_id: int) -> None:
        with self._job():
            scope = store_queue.queue_scope(merchant_id)
            async with self.engine.connect() as conn:
                state = await conn.run_sync(sync_state.find_sync_state, scope)
            if state is not None and state.consecutive_failures and state.last_attempt_at:
                wait = backoff_s(state.consecutive_failures, self.sync.calendar_interval_s)
                due = state.last_attempt_at + dt.timedelta(seconds=wait - 1)
                if utcnow() < due:
                    return
            window = Window.around(utcnow(), self.sync.horizon_days)
            await poll_store_queue(self.client, self.writer, merchant_id, window)

    async def schedule_staff(self, staff: Sequence[tuple[int, int | None]]) -> None:
        """One job per staff member, spread over the interval; stale jobs removed."""
        wanted = dict(staff)
        added = await self._keep_jobs(sync_state.STAFF_SCOPE_PREFIX, list(wanted), self.poll_staff)
        self._merchants = wanted
        log.info("poll.schedule", extra={"staff": len(wanted), "added": added})

    async def poll_staff(self, staff_id: int) -> None:
        with self._job():
            await self._poll_staff(staff_id)

    async def _poll_staff(self, staff_id: int) -> None:
        async with self.engine.connect() as conn:
            state = await conn.run_sync(
                sync_state.find_sync_state, sync_state.staff_scope(staff_id)
            )
        if state is not None and state.consecutive_failures and state.last_attempt_at:
            wait = backoff_s(state.consecutive_failures, self.sync.calendar_interval_s)
            if utcnow() < state.last_attempt_at + dt.timedelta(seconds=wait) - dt.timedelta(
                seconds=1
            ):
                log.debug("poll.staff.backoff", extra={"staff_id": staff_id, "wait_s": wait})
                return
        window = Window.around(utcnow(), self.sync.horizon_days)
        result = await poll_staff_calendar(
            self.client, self.writer, staff_id, window, merchant_id=self._merchants.get(staff_id)
        )
        if result.error:
            self._failing.add(staff_id)
            return
        if self._failing:  # Booxi answers again: catch up everyone who failed
            self.wake(sorted(self._failing - {staff_id}), reset_backoff=True)
            self._failing.clear()
        self.wake(sorted(result.moved_to))

    def wake(self, staff_ids: Sequence[int], *, reset_backoff: bool = False) -> None:
        """Run these staff members' polls now (spread over a few seconds)."""
        now = utcnow()
        with self._adding():
            for index, staff_id in enumerate(staff_ids):
                job = self.scheduler.get_job(sync_state.staff_scope(staff_id))
                if job is not None:
                    job.modify(next_run_time=now + dt.timedelta(seconds=0.2 * index))
        if reset_backoff and staff_ids:
            log.info("poll.catch_up", extra={"staff": len(staff_ids)})


# Jobs are added a slice of time at a time between two turns of the event loop. A
# chain's 10,000 staff took 0.6 s of the loop's CPU in the seconds after start (a wakeup
# per job, a lookup per staff member, a trigger per job), in slices of 100 jobs that held
# every request 10 to 13 ms at a time: the read p99 was 10 to 15 ms then, against 4 ms a
# few seconds later. Now 0.3 s (paused while adding, one listing of the jobs, one shared
# trigger), in slices of about a millisecond.
_SLICE_S = 0.001


class _Slices:
    """Yields to the event loop once ``_SLICE_S`` has passed since it last did."""

    def __init__(self) -> None:
        self._since = time.perf_counter()

    async def turn(self) -> None:
        if time.perf_counter() - self._since >= _SLICE_S:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
