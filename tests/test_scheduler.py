"""The poll schedule: staggered staff jobs, backoff on failure, catch-up after an outage."""

from __future__ import annotations

import asyncio

import pytest
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING

from mirror.budget import RateBudget
from mirror.client import BooxiClient
from mirror.config import SyncConfig
from mirror.scheduler import Poller, backoff_s
from tests.conftest import Store, booxi_client


@pytest.mark.parametrize(
    ("failures", "expected"), [(0, 0), (1, 60), (2, 120), (3, 240), (4, 240), (20, 240)]
)
def test_backoff_doubles_per_failure_up_to_four_intervals(failures: int, expected: float) -> None:
    assert backoff_s(failures, 60) == expected


async def _states(store: Store) -> list[dict]:
    return [dict(r) for r in await store.rows("SELECT * FROM sync_state WHERE kind = 'staff'")]


async def _until(check, within_s: float) -> None:
    """Poll the database (written by the scheduler's jobs) until ``check()`` holds."""
    for _ in range(int(within_s * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {within_s} s")


async def test_poller_polls_everyone_backs_off_and_catches_up(make_sim, store: Store) -> None:
    sim = await make_sim()
    staff_count = len(sim.world.staff)
    sync = SyncConfig(calendar_interval_s=2, reference_interval_s=3600, horizon_days=14)
    async with booxi_client(sim, timeout_s=1, max_attempts=1) as client:
        poller = Poller(client, store.writer, store.engine, sync)
        poller.start()
        try:

            async def all_synced() -> bool:
                states = await _states(store)
                return len(states) == staff_count and all(
                    s["consecutive_failures"] == 0 and s["last_success_at"] for s in states
                )

            await _until(all_synced, 15)
            jobs = [j for j in poller.scheduler.get_jobs() if j.id.startswith("staff:")]
            assert len(jobs) == staff_count
            assert poller.scheduler.state == STATE_RUNNING  # paused to add them, resumed
            await sim.control("POST", "/_sim/faults", {"outage": True})

            async def all_failing() -> bool:
                states = await _states(store)
                return all(s["consecutive_failures"] >= 1 for s in states)

            await _until(all_failing, 15)
            await asyncio.sleep(2.5)
            states = await _states(store)
            # backing off: after a failure the next try waits, so few have failed twice more
            assert max(s["consecutive_failures"] for s in states) <= 3
            await sim.control("POST", "/_sim/faults", {"outage": False})
            await _until(all_synced, 15)
        finally:
            poller.shutdown()


async def test_scheduling_a_chains_staff_lets_requests_in_and_drops_who_left(
    store: Store,
) -> None:
    sync = SyncConfig(calendar_interval_s=86400, reference_interval_s=86400, horizon_days=14)
    budget = RateBudget(1000, 100_000)
    async with BooxiClient("http://127.0.0.1:9/booking/v1", "unused", budget=budget) as client:
        poller = Poller(client, store.writer, store.engine, sync)
        poller.scheduler.start(paused=True)  # jobs scheduled, none run
        turns = 0

        async def other_work() -> None:  # what the event loop serves meanwhile
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        beside = asyncio.create_task(other_work())
        await asyncio.sleep(0)
        try:
            await poller.schedule_staff([(staff_id, 1) for staff_id in range(1, 2001)])
            during = turns
            assert during >= 10  # a turn of the loop every millisecond of adding
            # one it found paused stays paused (only the pause it made is undone)
            assert poller.scheduler.state == STATE_PAUSED
            staff_jobs = {j.id for j in poller.scheduler.get_jobs() if j.id.startswith("staff:")}
            assert len(staff_jobs) == 2000
            await poller.schedule_queues([1, 2])
            await poller.schedule_staff([(staff_id, 1) for staff_id in range(1, 11)])
            ids = {j.id for j in poller.scheduler.get_jobs()}
            assert ids == {f"staff:{i}" for i in range(1, 11)} | {"queue:1", "queue:2"}
        finally:
            beside.cancel()
            poller.scheduler.shutdown(wait=False)
