"""BooxiClient against the simulator over loopback: paging, checks, retries, budget, errors.

The simulator's ``/_sim/requests`` log is the server's view: it proves what was sent,
how often, in what order and how fast.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pydantic import SecretStr

from mirror.booxi_errors import (
    BooxiConflict,
    BooxiError,
    BooxiInvalidRequest,
    BooxiNotFound,
    BooxiRateLimited,
    BooxiRejected,
    BooxiUnavailable,
)
from mirror.budget import Priority, RateBudget
from mirror.client import BooxiClient
from mirror.config import BooxiConfig
from mirror.errors import ConfigError
from tests.conftest import ALL_TYPES, PARTNER_KEY, Sim, SimFactory

ClientFactory = Callable[..., BooxiClient]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Clients of a simulator; an unlimited budget and short backoff unless told."""
    made: list[BooxiClient] = []

    def make(sim: Sim, **options: Any) -> BooxiClient:
        options.setdefault("budget", RateBudget(1000, 100_000))
        options.setdefault("backoff_s", 0.01)
        options.setdefault("max_backoff_s", 2.0)
        client = BooxiClient(sim.api, options.pop("key", PARTNER_KEY), **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def _log(sim: Sim) -> list[dict[str, Any]]:
    return (await sim.control("GET", "/_sim/requests"))["requests"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _busiest_staff(sim: Sim, start: dt.datetime, end: dt.datetime) -> int:
    return max(
        sim.world.staff, key=lambda s: len(sim.world.calendar_events(s, start, end, set(ALL_TYPES)))
    )


def _future_appointment(sim: Sim) -> dict[str, Any]:
    soon = (_now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return next(
        b
        for b in sim.world.bookings.values()
        if b["bookingMethod"] == "Appointment"
        and b["status"] != "Cancelled"
        and b["startsOn"] > soon
    )


def _booking_body(booking: dict[str, Any], starts_on: str) -> dict[str, Any]:
    return {
        "merchantId": booking["merchantId"],
        "bookingMethod": "Appointment",
        "status": "Approved",
        "startsOn": starts_on,
        "staffId": booking["staffId"],
        "items": [{"serviceId": booking["items"][0]["serviceId"]}],
        "client": {"id": booking["client"]["id"]},
    }


def _most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


# ---- paging ---------------------------------------------------------------------------


async def test_iter_calendar_yields_every_event_once(sim: Sim, make_client: ClientFactory) -> None:
    client = make_client(sim)
    start = _now() - dt.timedelta(days=7) + dt.timedelta(minutes=1)
    end = _now() + dt.timedelta(days=30)
    staff_id = _busiest_staff(sim, start, end)
    pages = [page async for page in client.iter_calendar(staff_id, start, end)]
    events = [event for page in pages for event in page["calendarEvents"]]
    expected = sim.world.calendar_events(staff_id, start, end, set(ALL_TYPES))
    assert len(pages) > 2
    assert [e["id"] for e in events] == [e["id"] for e in expected]
    assert len({e["id"] for e in events}) == len(events)
    assert all(page["staff"]["id"] == staff_id for page in pages)

    requests = await _log(sim)
    assert len(requests) == len(pages)
    first = parse_qsl(requests[0]["query"])
    assert [value for name, value in first if name == "eventType"] == list(ALL_TYPES)
    assert {name for name, _ in first} == {"staffId", "from", "to", "eventType", "include"}
    assert dict(first)["from"].endswith("Z") and dict(first)["to"].endswith("Z")
    for follow_up in requests[1:]:
        assert [name for name, _ in parse_qsl(follow_up["query"])] == ["cursor"]


async def test_iter_booking_history_follows_cursors(
    make_sim: SimFactory, make_client: ClientFactory
) -> None:
    sim = await make_sim(page_size=3)
    client = make_client(sim)
    client_id = max(sim.world.clients, key=lambda c: len(list(sim.world.bookings_of_client(c))))
    pages = [page async for page in client.iter_booking_history(client_id)]
    got = [b["bookingId"] for page in pages for b in page["bookings"]]
    assert len(pages) > 1
    assert sorted(got) == sorted(b["bookingId"] for b in sim.world.bookings_of_client(client_id))
    assert len(set(got)) == len(got)
    requests = await _log(sim)
    assert dict(parse_qsl(requests[0]["query"])) == {
        "clientId": str(client_id),
        "order": "Ascending",
    }
    assert all(parse_qsl(r["query"])[0][0] == "cursor" for r in requests[1:])


async def test_listings_are_complete(make_sim: SimFactory, make_client: ClientFactory) -> None:
    sim = await make_sim(page_size=2)
    client = make_client(sim)
    world = sim.world
    by_id = lambda rows: sorted(rows, key=lambda row: row["id"])  # noqa: E731
    assert [s async for s in client.iter_staff()] == by_id(world.staff.values())
    assert [s async for s in client.iter_services()] == by_id(world.services.values())
    assert [c async for c in client.iter_service_categories()] == by_id(world.categories.values())
    assert [m async for m in client.iter_merchants(page_size=1)] == list(world.merchants.values())
    merchant_id = next(iter(world.merchants))
    assert [s async for s in client.iter_staff(merchant_id=merchant_id)] == by_id(
        s for s in world.staff.values() if s["merchantId"] == merchant_id
    )
    assert await client.get_merchant(merchant_id) == world.merchants[merchant_id]
    paths = [r["path"].removeprefix("/booking/v1") for r in await _log(sim)]
    assert paths.count("/staff/list") > 3  # cursor paging really happened
    assert paths.count("/merchant/list") == len(world.merchants)


# ---- checks before sending ------------------------------------------------------------

_WEEK = dt.timedelta(days=7)
INVALID: list[tuple[str, Callable[[BooxiClient, dt.datetime], Any]]] = [
    ("staff id zero", lambda c, now: c.iter_calendar(0, now, now)),
    ("staff id text", lambda c, now: c.iter_calendar("12", now, now)),  # type: ignore[arg-type]
    ("naive start", lambda c, now: c.iter_calendar(1, now.replace(tzinfo=None), now)),
    ("end before start", lambda c, now: c.iter_calendar(1, now, now - dt.timedelta(hours=1))),
    (
        "start too old",
        lambda c, now: c.iter_calendar(1, now - _WEEK - dt.timedelta(seconds=2), now),
    ),
    ("unknown type", lambda c, now: c.iter_calendar(1, now, now, event_types=("Meeting",))),
    ("no types", lambda c, now: c.iter_calendar(1, now, now, event_types=())),
    ("types as text", lambda c, now: c.iter_calendar(1, now, now, event_types="Appointment")),
    ("no includes", lambda c, now: c.iter_calendar(1, now, now, includes=())),
    ("history order", lambda c, now: c.iter_booking_history(1, order="Sideways")),
    ("history method", lambda c, now: c.iter_booking_history(1, booking_methods=("Walk",))),
    ("history range", lambda c, now: c.iter_booking_history(1, start=now, end=now - _WEEK)),
    ("empty booking id", lambda c, now: c.get_booking("")),
    ("booking id slash", lambda c, now: c.get_booking("A1/../../client")),
    ("booking id dots", lambda c, now: c.update_booking("..", {})),
    ("long booking id", lambda c, now: c.get_booking("A" * 65)),
    ("client id bool", lambda c, now: c.get_client(True)),
    ("client id negative", lambda c, now: c.delete_client(-4)),
    ("module id slash", lambda c, now: c.get_client_module_link(1, "crm/x")),
    ("page size", lambda c, now: c.iter_merchants(page_size=500)),
    ("body not object", lambda c, now: c.create_booking([1, 2])),  # type: ignore[arg-type]
    ("body not JSON", lambda c, now: c.create_client({"when": now})),
    ("search nothing", lambda c, now: c.search_clients()),
    ("search no merchant", lambda c, now: c.search_clients(email="ann@example.com")),
    (
        "search mixed",
        lambda c, now: c.search_clients(module_id="crm", external_id="9", email="a@example.com"),
    ),
    ("search half pair", lambda c, now: c.search_clients(merchant_id=1, first_name="Ann")),
    ("search empty value", lambda c, now: c.search_clients(merchant_id=1, email=" ")),
    ("method", lambda c, now: c.request("PATCH", "/client/1")),
    ("path with query", lambda c, now: c.request("GET", "/client?email=a@example.com")),
]


async def test_invalid_arguments_are_refused_before_sending(
    sim: Sim, make_client: ClientFactory
) -> None:
    client = make_client(sim)
    for name, call in INVALID:  # one simulator for all: starting one costs ~0.5 s
        with pytest.raises(BooxiInvalidRequest) as caught:
            result = call(client, _now())
            if inspect.isawaitable(result):
                await result
            else:
                await anext(result)
        assert isinstance(caught.value, ValueError), name
        assert "example.com" not in str(caught.value), name
    assert await _log(sim) == []
    assert client.stats["requests"] == 0


async def test_calendar_start_exactly_seven_days_back_is_allowed(
    sim: Sim, make_client: ClientFactory
) -> None:
    frozen = _now().replace(microsecond=0)
    client = make_client(sim, clock=lambda: frozen)
    staff_id = next(iter(sim.world.staff))
    pages = client.iter_calendar(staff_id, frozen - _WEEK, frozen)
    with pytest.raises(BooxiInvalidRequest, match="7 days"):
        client.iter_calendar(staff_id, frozen - _WEEK - dt.timedelta(seconds=1), frozen)
    assert (await anext(pages))["staff"]["id"] == staff_id


# ---- errors -----------------------------------------------------------------------------


async def test_conflict_maps_to_booxi_conflict_and_forward_returns_it_unchanged(
    sim: Sim, make_client: ClientFactory
) -> None:
    client = make_client(sim)
    taken = _future_appointment(sim)
    body = _booking_body(taken, taken["startsOn"])
    with pytest.raises(BooxiConflict) as caught:
        await client.create_booking(body)
    error = caught.value
    assert isinstance(error, BooxiRejected)
    assert error.status == 409 and error.error == "BookingConflict"
    assert error.body is not None
    assert error.body == {"message": error.body["message"], "code": 409, "error": "BookingConflict"}

    response = await client.forward("POST", "/booking", params=None, body=json.dumps(body).encode())
    assert response.status == 409
    assert response.json() == error.body
    assert response.headers["Content-Type"].startswith("application/json")
    assert [r["status"] for r in await _log(sim)] == [409, 409]  # each sent once
    assert client.stats["error.conflict"] == 2


async def test_unknown_booking_is_not_found_and_not_retried(
    sim: Sim, make_client: ClientFactory
) -> None:
    client = make_client(sim)
    with pytest.raises(BooxiNotFound) as caught:
        await client.get_booking("A1")
    assert caught.value.body == {"message": "Booking A1 not found", "code": 404}
    assert "GET /booking/A1" in str(caught.value)
    response = await client.forward("GET", "/booking/A1")
    assert (response.status, response.json()) == (404, caught.value.body)
    assert len(await _log(sim)) == 2


async def test_wrong_key_is_rejected_once(sim: Sim, make_client: ClientFactory) -> None:
    client = make_client(sim, key="not-the-key")
    with pytest.raises(BooxiRejected) as caught:
        await client.get_merchant(next(iter(sim.world.merchants)))
    assert type(caught.value) is BooxiRejected
    assert caught.value.status == 401 and caught.value.body is not None
    assert caught.value.body["code"] == 401
    assert "not-the-key" not in str(caught.value)
    assert [r["status"] for r in await _log(sim)] == [401]


async def test_get_is_retried_through_injected_errors(
    sim: Sim, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(sim, max_attempts=8)
    booking_ids = list(sim.world.bookings)[:10]
    await sim.control("POST", "/_sim/faults", {"error_rate": 0.5})
    with caplog.at_level(logging.DEBUG, logger="mirror"):
        answers = [await client.get_booking(booking_id) for booking_id in booking_ids]
    assert [a["booking"]["bookingId"] for a in answers] == booking_ids
    statuses = [r["status"] for r in await _log(sim)]
    assert statuses.count(200) == 10 and statuses.count(503) > 0
    assert client.stats["retries"] == statuses.count(503) == client.stats["error.unavailable"]
    retries = [r for r in caplog.records if r.getMessage().startswith("booxi.retry")]
    assert len(retries) == statuses.count(503)
    assert all(r.levelno == logging.WARNING and "/8" in r.getMessage() for r in retries)
    assert PARTNER_KEY not in caplog.text


@pytest.mark.parametrize("write", ["create_client", "update_client", "delete_client", "request"])
async def test_writes_are_never_retried(sim: Sim, make_client: ClientFactory, write: str) -> None:
    client = make_client(sim, max_attempts=4)
    client_id = next(iter(sim.world.clients))
    calls = {
        "create_client": lambda: client.create_client(
            {"merchantId": 1, "firstName": "A", "lastName": "B"}
        ),
        "update_client": lambda: client.update_client(client_id, {"quickNote": "x"}),
        "delete_client": lambda: client.delete_client(client_id),
        "request": lambda: client.request("DELETE", f"/client/{client_id}"),
    }
    await sim.control("POST", "/_sim/faults", {"error_rate": 1.0})
    with pytest.raises(BooxiUnavailable) as caught:
        await calls[write]()
    assert caught.value.status == 503
    assert [r["status"] for r in await _log(sim)] == [503]


async def test_outage_raises_unavailable_in_bounded_time(
    sim: Sim, make_client: ClientFactory
) -> None:
    client = make_client(sim, timeout_s=1, max_attempts=2)
    await sim.control("POST", "/_sim/faults", {"outage": True})
    begin = time.monotonic()
    with pytest.raises(BooxiUnavailable) as caught:
        await client.get_booking("A1")
    with pytest.raises(BooxiUnavailable):
        await client.forward("POST", "/booking", body=b"{}")
    assert time.monotonic() - begin < 4
    assert caught.value.status is None
    assert client.stats["requests"] == 3  # two attempts of the GET, one POST


async def test_slow_booxi_times_out_as_unavailable(sim: Sim, make_client: ClientFactory) -> None:
    client = make_client(sim, timeout_s=0.3, max_attempts=2)
    await sim.control("POST", "/_sim/faults", {"latency_ms": 1000})
    begin = time.monotonic()
    with pytest.raises(BooxiUnavailable, match="in time"):
        await client.get_booking("A1")
    assert 0.6 <= time.monotonic() - begin < 2.5
    await sim.control("POST", "/_sim/faults", {"latency_ms": 0})


# ---- the budget, seen from the server -------------------------------------------------


async def test_concurrent_gets_stay_within_booxis_fair_use(
    make_sim: SimFactory, make_client: ClientFactory
) -> None:
    sim = await make_sim(rate_limit=True)
    client = make_client(sim, budget=RateBudget(5, 300))
    booking_ids = list(sim.world.bookings)[:25]
    answers = await asyncio.gather(*(client.get_booking(b) for b in booking_ids))
    assert [a["booking"]["bookingId"] for a in answers] == booking_ids
    requests = await _log(sim)
    assert [r["status"] for r in requests] == [200] * 25  # not one 429
    assert _most_in_any_second([r["at"] for r in requests]) <= 5
    assert client.budget.stats.granted == 25


async def test_429_is_retried_after_retry_after(
    sim: Sim, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(sim, max_attempts=4)
    merchant_id = next(iter(sim.world.merchants))
    await sim.control("POST", "/_sim/faults", {"throttle_rate": 1.0})
    with caplog.at_level(logging.WARNING, logger="mirror"):
        call = asyncio.create_task(client.get_merchant(merchant_id))
        await asyncio.sleep(0.3)
        await sim.control("POST", "/_sim/faults", {"throttle_rate": 0.0})
        assert await call == sim.world.merchants[merchant_id]
    requests = await _log(sim)
    assert [r["status"] for r in requests] == [429, 200]
    assert requests[1]["at"] - requests[0]["at"] >= 0.95  # Retry-After: 1
    assert client.budget.stats.pauses == 1
    assert client.stats["error.rate_limited"] == 1
    assert "wait 1.0s" in caplog.text


async def test_429_with_a_long_retry_after_is_raised_not_waited(
    sim: Sim, make_client: ClientFactory
) -> None:
    client = make_client(sim, max_attempts=4, max_backoff_s=0.5)
    await sim.control("POST", "/_sim/faults", {"throttle_rate": 1.0})
    with pytest.raises(BooxiRateLimited) as caught:
        await client.get_merchant(1)
    assert caught.value.retry_after == 1.0
    assert len(await _log(sim)) == 1
    assert client.budget.delay() > 0.5  # everyone else waits out the pause too


async def test_write_goes_before_queued_polls(sim: Sim, make_client: ClientFactory) -> None:
    client = make_client(sim, budget=RateBudget(2, 300))
    booking_ids = list(sim.world.bookings)[:6]
    polls = [asyncio.create_task(client.get_booking(b)) for b in booking_ids]
    await asyncio.sleep(0.2)  # two polls went, four queue
    write = await client.update_client(next(iter(sim.world.clients)), {"quickNote": "vip"})
    assert write["client"]["quickNote"] == "vip"
    await asyncio.gather(*polls)
    methods = [r["method"] for r in await _log(sim)]
    assert len(methods) == 7
    position = methods.index("PUT")
    assert position <= 3  # two polls before it, perhaps one granted alongside it
    assert methods[position + 1 :].count("GET") >= 3
    assert client.budget.stats.granted_by_priority == {"WRITE": 1, "FILL": 0, "POLL": 6}


# ---- writes and clients -----------------------------------------------------------------


async def test_client_and_booking_writes_round_trip(sim: Sim, make_client: ClientFactory) -> None:
    client = make_client(sim)
    merchant_id = next(iter(sim.world.merchants))
    created = await client.create_client(
        {"merchantId": merchant_id, "firstName": "Ada", "lastName": "Quill", "email": "ada@q.test"}
    )
    client_id = created["client"]["id"]
    assert (await client.get_client(client_id))["client"]["email"] == "ada@q.test"
    found = await client.search_clients(merchant_id=merchant_id, email="ada@q.test")
    assert [c["id"] for c in found["clients"]] == [client_id]
    updated = await client.update_client(client_id, {"quickNote": "prefers mornings"})
    assert updated["client"]["quickNote"] == "prefers mornings"
    link = await client.put_client_module_link(client_id, "crm", {"externalId": "C-77"})
    assert link["link"]["externalId"] == "C-77"
    got = await client.get_client_module_link(client_id, "crm")
    assert got["link"] == link["link"]
    by_link = await client.search_clients(module_id="crm", external_id="C-77")
    assert [c["id"] for c in by_link["clients"]] == [client_id]

    taken = _future_appointment(sim)
    far = (_now() + dt.timedelta(days=200)).replace(hour=15, minute=0, second=0, microsecond=0)
    body = _booking_body(taken, far.strftime("%Y-%m-%dT%H:%M:%SZ")) | {"client": {"id": client_id}}
    booking = (await client.create_booking(body))["booking"]
    assert booking["bookingId"] in sim.world.bookings
    cancelled = await client.update_booking(booking["bookingId"], {"status": "Cancelled"})
    assert cancelled["booking"]["status"] == "Cancelled"
    assert (await client.get_booking(booking["bookingId"]))["booking"]["status"] == "Cancelled"

    await client.delete_client(client_id)
    with pytest.raises(BooxiNotFound):
        await client.get_client(client_id)
    assert all(r["method"] != "GET" or r["status"] < 500 for r in await _log(sim))


async def test_logs_carry_no_key_and_no_query_values(
    sim: Sim, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(sim)
    person = next(iter(sim.world.clients.values()))
    with caplog.at_level(logging.DEBUG, logger="mirror"):
        await client.search_clients(merchant_id=person["merchantId"], email=person["email"])
    (record,) = [r for r in caplog.records if r.getMessage().startswith("booxi.request")]
    assert record.levelno == logging.DEBUG
    assert record.__dict__["params"] == ["merchantId", "email"]
    assert record.__dict__["status"] == 200 and record.__dict__["path"] == "/client"
    ours = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name.startswith("mirror")
    )
    assert person["email"] not in ours and PARTNER_KEY not in ours
    assert PARTNER_KEY not in repr(client)


async def test_from_config_uses_the_booxi_section(sim: Sim) -> None:
    config = BooxiConfig(base_url=sim.api, partner_key=SecretStr(PARTNER_KEY), timeout_s=2)
    async with BooxiClient.from_config(config) as client:
        merchant_id = next(iter(sim.world.merchants))
        assert (await client.get_merchant(merchant_id))["id"] == merchant_id
        assert client.budget.stats.granted == 1
    with pytest.raises(ConfigError, match="partner_key"):
        BooxiClient.from_config(BooxiConfig(base_url=sim.api))


async def test_a_shared_session_is_left_open(sim: Sim) -> None:
    async with BooxiClient(sim.api, PARTNER_KEY, budget=RateBudget(5, 300), session=sim.session):
        pass
    assert not sim.session.closed


def test_error_from_response_picks_the_class() -> None:
    body = b'{"message": "staff 3 is not free", "code": 409, "error": "ScheduleConflict"}'
    conflict = BooxiError.from_response(409, body, {})
    assert isinstance(conflict, BooxiConflict) and conflict.error == "ScheduleConflict"
    assert isinstance(BooxiError.from_response(502, b"<html>", {}), BooxiUnavailable)
    assert BooxiError.from_response(400, b"not json", {}).body is None
    limited = BooxiError.from_response(429, b"", {"retry-after": "2"})
    assert isinstance(limited, BooxiRateLimited) and limited.retry_after == 2.0
    now = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
    dated = BooxiError.from_response(
        429, b"", {"Retry-After": "Tue, 10 Mar 2026 12:00:05 GMT"}, now=now
    )
    assert isinstance(dated, BooxiRateLimited) and dated.retry_after == 5.0
    unreadable = BooxiError.from_response(429, b"", {"Retry-After": "soon"})
    assert isinstance(unreadable, BooxiRateLimited) and unreadable.retry_after is None
    assert type(BooxiError.from_response(302, b"", {})) is BooxiError


async def test_priority_is_passed_to_the_budget(sim: Sim, make_client: ClientFactory) -> None:
    client = make_client(sim)
    await client.get_booking(next(iter(sim.world.bookings)), priority=Priority.FILL)
    assert client.budget.stats.granted_by_priority["FILL"] == 1
