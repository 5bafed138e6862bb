"""Fills cannot be abused: Booxi's 404s remembered per caller, a fill budget per key
(429 with ``Retry-After`` over it), and fills held to half the rate budget while polls
wait. The budget is tested directly (orders and counts, no timings); the rest through
the mirror's API on a loopback port, against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from api.fill_guard import FillGuard, TokenBucket
from api.keys import FILL_LOCKS
from mirror.budget import Priority, RateBudget
from mirror.client import BooxiClient
from tests.conftest import API_KEY, PARTNER_KEY, MirrorApp, Sim

READ_KEY = "mirror-read-only-key-for-fills-0123"
MISSING = 987_654_321  # no such client in the simulator

Starter = Callable[..., Awaitable[MirrorApp]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# RateBudget.limit_share


async def _queue(budget: RateBudget, names: list[tuple[str, Priority]]) -> list[str]:
    """Queue these acquirers in this order; the order in which they are granted."""
    order: list[str] = []

    async def one(name: str, priority: Priority) -> None:
        await budget.acquire(priority)
        order.append(name)

    tasks = []
    for name, priority in names:
        tasks.append(asyncio.create_task(one(name, priority)))
        await asyncio.sleep(0)  # each arrives in this order
    await asyncio.sleep(0)
    return order


async def test_fills_get_half_of_the_minute_while_polls_wait() -> None:
    clock = FakeClock()
    budget = RateBudget(100, 10, clock=clock)
    budget.limit_share(Priority.FILL, 0.5)
    budget.pause(1)  # everyone queues first
    fills = [(f"fill-{i}", Priority.FILL) for i in range(1, 11)]
    polls = [(f"poll-{i}", Priority.POLL) for i in range(1, 11)]
    order = await _queue(budget, fills + polls)
    assert order == []

    clock.now += 1
    budget.limit_share(Priority.FILL, 0.5)  # setting the cap again re-dispatches
    await asyncio.sleep(0)

    # fills first, by priority, until they hold 5 of the minute's 10; then the polls
    assert order == [f"fill-{i}" for i in range(1, 6)] + [f"poll-{i}" for i in range(1, 6)]
    assert budget.stats.granted_by_priority == {"WRITE": 0, "FILL": 5, "POLL": 5}
    assert budget.stats.queued == 10


async def test_fills_get_half_of_each_second_while_polls_wait() -> None:
    clock = FakeClock()
    budget = RateBudget(4, 1000, clock=clock)
    budget.limit_share(Priority.FILL, 0.5)
    for _ in range(4):
        await budget.acquire(Priority.POLL)  # this second is used up
    names = [(f"fill-{i}", Priority.FILL) for i in range(1, 9)]
    names += [(f"poll-{i}", Priority.POLL) for i in range(1, 5)]
    order = await _queue(budget, names)
    assert order == []

    grants: list[list[str]] = []
    for _ in range(3):  # three windows later, one at a time
        clock.now += 1.1
        budget.limit_share(Priority.FILL, 0.5)  # setting the cap again re-dispatches
        await asyncio.sleep(0)
        grants.append(order[sum(len(g) for g in grants) :])

    assert grants == [
        ["fill-1", "fill-2", "poll-1", "poll-2"],  # 2 of 4 each while polls wait
        ["fill-3", "fill-4", "poll-3", "poll-4"],
        ["fill-5", "fill-6", "fill-7", "fill-8"],  # no poll waits: no cap
    ]


async def test_without_waiting_polls_or_a_share_fills_take_the_whole_budget() -> None:
    capped = RateBudget(100, 10, clock=FakeClock())
    capped.limit_share(Priority.FILL, 0.5)
    for _ in range(10):
        assert await capped.acquire(Priority.FILL) == 0.0  # nothing else wants it

    plain = RateBudget(100, 10, clock=FakeClock())
    order = await _queue(
        plain, [(f"fill-{i}", Priority.FILL) for i in range(1, 13)] + [("poll", Priority.POLL)]
    )
    assert order == [f"fill-{i}" for i in range(1, 11)]  # no share: priority alone


async def test_writes_are_not_capped_and_come_first() -> None:
    budget = RateBudget(100, 6, clock=FakeClock())
    budget.limit_share(Priority.FILL, 0.5)
    order = await _queue(
        budget,
        [("fill-1", Priority.FILL), ("poll-1", Priority.POLL)]
        + [(f"write-{i}", Priority.WRITE) for i in range(1, 5)]
        + [("fill-2", Priority.FILL), ("fill-3", Priority.FILL), ("fill-4", Priority.FILL)],
    )
    # fill-1 and poll-1 went at once (room); the writes next; fills stop at 3 of 6
    assert order[:6] == ["fill-1", "poll-1", "write-1", "write-2", "write-3", "write-4"]
    assert budget.stats.queued == 3


async def test_a_cancelled_poll_lifts_the_cap() -> None:
    clock = FakeClock()
    budget = RateBudget(100, 4, clock=clock)
    budget.limit_share(Priority.FILL, 0.5)
    for _ in range(4):
        await budget.acquire(Priority.POLL)  # the minute is used up
    poll = asyncio.create_task(budget.acquire(Priority.POLL))
    await asyncio.sleep(0)
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    clock.now += 61
    order = await _queue(budget, [(f"fill-{i}", Priority.FILL) for i in range(1, 5)])
    assert order == ["fill-1", "fill-2", "fill-3", "fill-4"]


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_limit_share_refuses_nonsense(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        RateBudget(5, 300).limit_share(Priority.FILL, share)


async def test_limit_share_none_removes_the_cap() -> None:
    budget = RateBudget(100, 4, clock=FakeClock())
    budget.limit_share(Priority.FILL, 0.5)
    budget.limit_share(Priority.FILL, None)
    order = await _queue(
        budget, [(f"fill-{i}", Priority.FILL) for i in range(1, 5)] + [("poll", Priority.POLL)]
    )
    assert order == ["fill-1", "fill-2", "fill-3", "fill-4"]


# FillGuard on its own


def test_token_bucket_allows_a_burst_then_refills() -> None:
    bucket = TokenBucket(per_s=0.5, burst=3, tokens=3, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(2.0)  # one token every 2 s
    assert bucket.take(1.0) == pytest.approx(1.0)  # nothing taken meanwhile
    assert bucket.take(2.0) == 0.0
    assert bucket.take(100.0) == 0.0
    assert bucket.tokens == pytest.approx(2.0)  # never more than the burst


def test_remembered_404s_expire_and_stay_bounded() -> None:
    clock = FakeClock()
    guard = FillGuard(fills_per_minute=30, burst=10, not_found_ttl_s=600, clock=clock)
    guard.remember_missing("crm", "client-info:1")
    assert guard.known_missing("crm", "client-info:1")
    assert not guard.known_missing("tablets", "client-info:1")  # per caller
    assert not guard.known_missing("crm", "client-info:2")
    clock.now += 600
    assert not guard.known_missing("crm", "client-info:1")
    assert guard.remembered == 0

    small = FillGuard(fills_per_minute=30, burst=10, not_found_max=100, clock=clock)
    for n in range(250):
        small.remember_missing("crm", f"client-info:{n}")
    assert small.remembered == 100
    assert small.known_missing("crm", "client-info:249")
    assert not small.known_missing("crm", "client-info:0")  # the oldest went first


# Through the API


@pytest.fixture
async def counted(sim: Sim) -> AsyncIterator[tuple[BooxiClient, RateBudget]]:
    """A Booxi client for the simulator whose budget counts the calls made."""
    budget = RateBudget(1000, 100_000)
    client = BooxiClient(sim.api, PARTNER_KEY, budget=budget)
    yield client, budget
    await client.close()


def _keys() -> list[dict[str, Any]]:
    return [
        {"name": "all", "key": API_KEY, "scopes": ["read", "write"]},
        {"name": "reader", "key": READ_KEY, "scopes": ["read"]},
    ]


async def _get(
    app: MirrorApp, path: str, params: Any = None, key: str = READ_KEY
) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(app.url + "/booking/v1" + path, params=params, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.json()


def _calls(budget: RateBudget) -> int:
    return budget.stats.granted


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (f"/client/{MISSING}", None),
        ("/booking", {"clientId": str(MISSING)}),
        ("/booking/A999999999", None),
    ],
)
async def test_a_missing_id_asked_again_is_answered_404_without_booxi(
    counted: tuple[BooxiClient, RateBudget], make_mirror_app: Starter, path: str, params: Any
) -> None:
    client, budget = counted
    app = await make_mirror_app(booxi=client, api={"keys": _keys()})

    first = await _get(app, path, params)
    asked = _calls(budget)
    again = [await _get(app, path, params) for _ in range(5)]

    assert first[0] == 404 and asked >= 1
    assert _calls(budget) == asked  # Booxi not asked again
    for status, _headers, body in again:
        assert status == 404
        assert body == first[2]  # the same answer, in Booxi's shape
        assert set(body) == {"message", "code"}
    other = await _get(app, path, params, key=API_KEY)  # another key: its own answer
    assert other[0] == 404
    assert _calls(budget) > asked


async def test_a_key_over_its_fill_budget_gets_429_and_booxi_is_not_asked(
    counted: tuple[BooxiClient, RateBudget], make_mirror_app: Starter, sim: Sim
) -> None:
    client, budget = counted
    api = {"keys": _keys(), "fills_per_minute": 1, "fill_burst": 3}
    app = await make_mirror_app(booxi=client, api=api)
    known = next(iter(sim.world.clients))

    answers = [await _get(app, f"/client/{MISSING + n}") for n in range(3)]
    assert [status for status, _, _ in answers] == [404, 404, 404]
    asked = _calls(budget)

    status, headers, body = await _get(app, f"/client/{MISSING + 3}")
    assert status == 429
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert body["code"] == 429 and "try again in" in body["message"]
    assert set(body) == {"message", "code"}
    assert _calls(budget) == asked

    # what the key was told already, or what the mirror holds, costs nothing
    assert (await _get(app, f"/client/{MISSING}"))[0] == 404
    assert (await _get(app, f"/client/{known}", key=API_KEY))[0] == 200  # filled by "all"
    assert (await _get(app, f"/client/{known}"))[0] == 200  # held now: no fill
    assert (await _get(app, f"/client/{MISSING + 4}"))[0] == 429  # still over
    # another key has its own budget
    assert (await _get(app, f"/client/{MISSING + 4}", key=API_KEY))[0] == 404


async def test_a_burst_of_history_reads_for_random_clients_costs_at_most_the_burst(
    counted: tuple[BooxiClient, RateBudget], make_mirror_app: Starter
) -> None:
    client, budget = counted
    api = {"keys": _keys(), "fills_per_minute": 30, "fill_burst": 10}  # the defaults
    app = await make_mirror_app(booxi=client, api=api)

    async def one(n: int) -> int:
        return (await _get(app, "/booking", {"clientId": str(MISSING + n)}))[0]

    statuses = await asyncio.gather(*(one(n) for n in range(400)))

    assert set(statuses) <= {404, 429}
    fills = statuses.count(404)
    assert 10 <= fills <= 12  # the burst, and what refilled while they ran
    assert _calls(budget) <= 2 * fills  # history fills ask Booxi once or twice each
    assert app.server.app[FILL_LOCKS] == {}  # 400 ids asked, no lock left behind


def test_remember_not_found_is_per_caller() -> None:
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from api import upstream
    from api.auth import PRINCIPAL_KEY, Principal
    from api.fill_guard import FILL_GUARD

    app = web.Application()
    guard = app[FILL_GUARD] = FillGuard(fills_per_minute=30, burst=10)
    request = make_mocked_request("GET", "/booking/v1/booking/A1", app=app)
    request[PRINCIPAL_KEY] = Principal("store-a", frozenset({1}), frozenset({"read"}))

    upstream.remember_not_found(request, "booking:A1")

    assert guard.known_missing("store-a", "booking:A1")
    assert not guard.known_missing("all", "booking:A1")
