"""SharedRateBudget and storage.budget_ledger: one Booxi budget for every process on one
database. Two budgets on two engines of the same database stand for two replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mirror.budget import Priority
from mirror.client import BooxiClient
from mirror.shared_budget import BudgetUnavailable, SharedRateBudget
from storage import budget_ledger
from storage.engine import make_engine
from tests.conftest import PARTNER_KEY, SimFactory, Store

pytestmark = pytest.mark.both_engines


@pytest.fixture
async def second_engine(store: Store) -> AsyncIterator[Any]:
    """Another engine on ``store``'s database, as another replica would have."""
    engine = make_engine(store.url)
    yield engine
    await engine.dispose()


def _most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


async def test_two_budgets_on_one_database_stay_within_fair_use(
    store: Store, second_engine: Any, make_sim: SimFactory
) -> None:
    sim = await make_sim(rate_limit=True)
    merchant_id = next(iter(sim.world.merchants))
    budgets = [SharedRateBudget(engine, 5, 300) for engine in (store.engine, second_engine)]
    clients = [BooxiClient(sim.api, PARTNER_KEY, budget=budget) for budget in budgets]
    try:
        await asyncio.gather(
            *(client.get_merchant(merchant_id) for client in clients for _ in range(12))
        )
    finally:
        for client in clients:
            await client.close()
    log = (await sim.control("GET", "/_sim/requests"))["requests"]
    assert len(log) == 24
    assert [entry["status"] for entry in log] == [200] * 24  # no 429
    assert _most_in_any_window([entry["at"] for entry in log], 1.0) <= 5
    assert await budget_ledger.used(store.engine, 60) == 24


async def test_a_pause_after_a_429_reaches_the_other_budget(
    store: Store, second_engine: Any
) -> None:
    first = SharedRateBudget(store.engine, 5, 300)
    other = SharedRateBudget(second_engine, 5, 300)
    first.pause(1.5)
    await first.close()  # the pause is written in the background
    started = time.monotonic()
    await other.acquire(Priority.WRITE)
    assert time.monotonic() - started >= 1.4


async def test_a_charge_counts_for_the_other_budget(store: Store, second_engine: Any) -> None:
    first = SharedRateBudget(store.engine, 5, 300)
    other = SharedRateBudget(second_engine, 5, 300)
    first.charge(4)
    await first.close()
    assert await other.acquire(Priority.POLL) < 0.5
    started = time.monotonic()
    await other.acquire(Priority.POLL)  # 4 + 1 fill the second: this one waits for it
    assert time.monotonic() - started >= 0.9


async def test_a_write_overtakes_a_poll_waiting_for_the_ledger(
    store: Store, second_engine: Any
) -> None:
    other = SharedRateBudget(second_engine, 5, 300)
    for _ in range(5):
        await other.acquire(Priority.POLL)
    budget = SharedRateBudget(store.engine, 5, 300)
    done: list[str] = []

    async def go(priority: Priority) -> None:
        await budget.acquire(priority)
        done.append(priority.name)

    poll = asyncio.create_task(go(Priority.POLL))
    await asyncio.sleep(0.2)  # the poll is waiting for the ledger by now
    await asyncio.gather(poll, go(Priority.WRITE))
    assert done == ["WRITE", "POLL"]


async def test_fills_keep_to_their_share_while_polls_wait_for_the_ledger(
    store: Store, second_engine: Any
) -> None:
    other = SharedRateBudget(second_engine, 5, 300)
    for _ in range(5):  # another replica has just used the second
        await other.acquire(Priority.POLL)
    budget = SharedRateBudget(store.engine, 5, 300)
    budget.limit_share(Priority.FILL, 0.5)
    done: list[str] = []

    async def go(priority: Priority) -> None:
        await budget.acquire(priority)
        done.append(priority.name)

    await asyncio.gather(*(go(p) for p in [Priority.FILL] * 4 + [Priority.POLL] * 4))
    # the local queue orders the grants, the ledger only times them: at most 2 of 5 fills
    assert done[:5].count("FILL") == 2
    assert budget.stats.granted == 8  # slots the ledger refused were given back


async def test_the_ledger_answers_the_wait_for_a_full_minute(store: Store) -> None:
    limits: dict[str, Any] = {
        "short_limit": 5,
        "short_window_s": 1.1,
        "long_limit": 3,
        "long_window_s": 60.1,
    }
    for _ in range(3):
        assert await budget_ledger.claim_slot(store.engine, **limits) == 0.0
    wait = await budget_ledger.claim_slot(store.engine, **limits)
    assert 59 < wait <= 60.1
    assert await budget_ledger.used(store.engine, 60) == 3  # a refused claim leaves no row


async def test_an_unreachable_ledger_fails_the_request_instead_of_passing_it() -> None:
    engine = make_engine("postgresql+asyncpg://postgres@127.0.0.1:9/nowhere")  # refused
    budget = SharedRateBudget(engine, 5, 300)
    try:
        with pytest.raises(BudgetUnavailable, match="shared rate budget"):
            await budget.acquire(Priority.WRITE)
        assert budget.ledger_errors == 1
    finally:
        await engine.dispose()
