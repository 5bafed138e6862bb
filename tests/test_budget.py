"""RateBudget: rolling windows, priority order, pauses and cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from mirror.budget import Priority, RateBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


async def test_budget_admits_per_second_then_waits_for_the_window() -> None:
    clock = FakeClock()
    budget = RateBudget(5, 300, clock=clock, margin_s=0.05)
    for _ in range(5):
        assert await budget.acquire(Priority.POLL) == 0.0
    assert budget.delay() == pytest.approx(1.05)
    clock.advance(0.5)
    assert budget.delay() == pytest.approx(0.55)
    clock.advance(0.55)
    assert budget.delay() == 0.0
    assert budget.stats.granted == 5


async def test_budget_keeps_both_windows_with_their_margin() -> None:
    clock = FakeClock()
    budget = RateBudget(5, 12, clock=clock, margin_s=0.05)
    granted: list[float] = []
    for _ in range(40):
        clock.advance(budget.delay())
        assert await budget.acquire(Priority.POLL) == 0.0
        granted.append(clock.now)
    assert _most_in_any_window(granted, 1.05) == 5
    assert _most_in_any_window(granted, 60.05) == 12
    # the 13th request waits for the first to leave the 60 s window (plus the margin)
    assert granted[12] == pytest.approx(granted[0] + 60.05)


async def test_budget_charge_counts_extra_weight() -> None:
    clock = FakeClock()
    budget = RateBudget(5, 300, clock=clock)
    for _ in range(3):
        await budget.acquire(Priority.POLL)
    assert budget.delay() == 0.0
    budget.charge(2)  # a 400 answer counts double at Booxi
    assert budget.delay() == pytest.approx(1.05)
    assert budget.stats.charged == 2


@pytest.mark.parametrize(
    ("per_second", "burst", "window"), [(2.5, 2, 1.05), (0.5, 1, 2.05), (1, 1, 1.05)]
)
async def test_budget_fractional_rates_round_down(
    per_second: float, burst: int, window: float
) -> None:
    clock = FakeClock()
    budget = RateBudget(per_second, 300, clock=clock)
    for _ in range(burst):
        assert budget.delay() == 0.0
        await budget.acquire(Priority.POLL)
    assert budget.delay() == pytest.approx(window)


@pytest.mark.parametrize(
    "args", [(0, 300), (-1, 300), (float("inf"), 300), (5, 0)], ids=["zero", "neg", "inf", "min"]
)
def test_budget_refuses_nonsense_limits(args: tuple[float, int]) -> None:
    with pytest.raises(ValueError):
        RateBudget(*args)


async def test_budget_paces_real_requests_at_five_a_second() -> None:
    budget = RateBudget(5, 300)
    started: list[float] = []

    async def one() -> None:
        await budget.acquire(Priority.POLL)
        started.append(time.monotonic())

    begin = time.monotonic()
    await asyncio.gather(*(one() for _ in range(12)))
    assert time.monotonic() - begin >= 1.8
    assert len(started) == 12
    assert _most_in_any_window(started, 1.0) <= 5
    stats = budget.stats
    assert stats.granted == 12 and stats.queued == 0
    assert stats.waited_by_priority["POLL"] == 7
    assert stats.wait_s == pytest.approx(stats.wait_s_by_priority["POLL"])
    assert stats.wait_s > 5 * 1.0  # five waited ~1.05 s, two ~2.1 s


async def test_budget_serves_by_priority_then_arrival() -> None:
    budget = RateBudget(10, 300)
    for _ in range(10):
        await budget.acquire(Priority.POLL)  # the window is full now
    order: list[str] = []

    async def one(name: str, priority: Priority) -> None:
        await budget.acquire(priority)
        order.append(name)

    tasks = []
    for name, priority in [
        ("poll-1", Priority.POLL),
        ("poll-2", Priority.POLL),
        ("fill-1", Priority.FILL),
        ("poll-3", Priority.POLL),
        ("write-1", Priority.WRITE),
        ("fill-2", Priority.FILL),
    ]:
        tasks.append(asyncio.create_task(one(name, priority)))
        await asyncio.sleep(0)  # each arrives in this order
    assert budget.stats.queued == 6
    await asyncio.wait_for(asyncio.gather(*tasks), 3)
    assert order == ["write-1", "fill-1", "fill-2", "poll-1", "poll-2", "poll-3"]


async def test_budget_cancelled_waiter_does_not_block_the_others() -> None:
    budget = RateBudget(1, 300)
    await budget.acquire(Priority.POLL)
    first = asyncio.create_task(budget.acquire(Priority.WRITE))
    second = asyncio.create_task(budget.acquire(Priority.POLL))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    waited = await asyncio.wait_for(second, 2)
    assert 0.9 < waited < 1.3  # it took the freed place, one window after the first grant
    assert budget.stats.granted == 2 and budget.stats.queued == 0


async def test_budget_slot_granted_to_a_cancelled_waiter_is_given_back() -> None:
    clock = FakeClock()
    budget = RateBudget(2, 300, clock=clock)
    await budget.acquire(Priority.POLL)
    await budget.acquire(Priority.POLL)
    poll = asyncio.create_task(budget.acquire(Priority.POLL))
    await asyncio.sleep(0)  # queued
    clock.advance(2)
    # this write is granted at once and, in the same step, so is the queued poll...
    assert await budget.acquire(Priority.WRITE) == 0.0
    assert budget.delay() > 0
    poll.cancel()  # ...whose task is cancelled before it could use its slot
    with pytest.raises(asyncio.CancelledError):
        await poll
    assert budget.delay() == 0.0  # the slot came back
    assert budget.stats.granted == 3
    assert budget.stats.granted_by_priority == {"WRITE": 1, "FILL": 0, "POLL": 2}


async def test_budget_pause_holds_every_grant_until_the_deadline() -> None:
    budget = RateBudget(100, 1000)
    budget.pause(0.3)
    budget.pause(0.1)  # a shorter pause never shortens the one in force
    begin = time.monotonic()
    waits = await asyncio.gather(budget.acquire(Priority.WRITE), budget.acquire(Priority.POLL))
    assert time.monotonic() - begin >= 0.29
    assert all(0.25 < wait < 0.6 for wait in waits)
    assert budget.stats.pauses == 1


async def test_budget_pause_while_waiters_queue_moves_their_grant() -> None:
    clock = FakeClock()
    budget = RateBudget(1, 300, clock=clock)
    await budget.acquire(Priority.POLL)
    budget.pause_until(clock.now + 30)
    assert budget.delay() == pytest.approx(30)
    clock.advance(30)
    assert budget.delay() == 0.0
