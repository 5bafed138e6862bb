"""Differential tests: generated queries to Booxi (the simulator) and to the mirror give
the same JSON, items compared across all pages (page sizes may differ: the simulator
pages by 2 here, the mirror by its own ``page_size``), for every read route."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from mirror.sync import run_pass
from mirror.vocabulary import BOOKING_METHODS, EVENT_TYPES, INCLUDED_OBJECTS, ORDERS
from tests.conftest import Store, booxi_client, calendar_params
from tests.differential import Both

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
PICK = st.integers(min_value=0, max_value=10_000)  # an index into the world's objects


def wire(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
async def both(make_sim, store: Store, make_mirror_app) -> AsyncIterator[Both]:
    """A mirror filled by one pass over a simulator that pages by 2."""
    sim = await make_sim(days_before=8, days_after=10, clients=30, dialects=("page-size-2",))
    client = booxi_client(sim)
    assert (await run_pass(client, store.writer, store.engine, horizon_days=10)).ok
    app = await make_mirror_app(booxi=client)
    async with aiohttp.ClientSession() as session:
        yield Both(sim, app.url, session)
    await client.close()


def _nth(values: Any, index: int) -> Any:
    values = list(values)
    return values[index % len(values)]


@SETTINGS
@given(
    staff=PICK,
    start_h=st.integers(min_value=-6 * 24, max_value=10 * 24),
    span_h=st.integers(min_value=0, max_value=8 * 24),
    types=st.sets(st.sampled_from(EVENT_TYPES), min_size=1),
    includes=st.sets(st.sampled_from(INCLUDED_OBJECTS), min_size=1),
)
async def test_calendar_answers_equal_booxis(
    both: Both, staff: int, start_h: int, span_h: int, types: set[str], includes: set[str]
) -> None:
    staff_id = _nth(both.sim.world.staff, staff)
    start = NOW + dt.timedelta(hours=start_h)
    params = calendar_params(
        staff_id, start, start + dt.timedelta(hours=span_h), tuple(types), tuple(includes)
    )
    await both.same_pages("/calendar", params)


@SETTINGS
@given(
    client=PICK,
    start_d=st.none() | st.integers(min_value=-20, max_value=12),
    span_d=st.integers(min_value=0, max_value=30),
    by_store=st.booleans(),
    methods=st.sets(st.sampled_from(BOOKING_METHODS)),
    order=st.sampled_from(ORDERS),
)
async def test_history_answers_equal_booxis(
    both: Both,
    client: int,
    start_d: int | None,
    span_d: int,
    by_store: bool,
    methods: set[str],
    order: str,
) -> None:
    world = both.sim.world
    booking = _nth((b for b in world.bookings.values() if b["client"].get("id")), client)
    params: list[tuple[str, str]] = [("clientId", str(booking["client"]["id"])), ("order", order)]
    if start_d is not None:
        start = NOW + dt.timedelta(days=start_d)
        params += [("from", wire(start)), ("to", wire(start + dt.timedelta(days=span_d)))]
    if by_store:
        params.append(("merchantId", str(booking["merchantId"])))
    params += [("bookingMethod", method) for method in sorted(methods)]
    await both.same_pages("/booking", params)


@SETTINGS
@given(booking=PICK, client=PICK)
async def test_booking_and_client_answers_equal_booxis(
    both: Both, booking: int, client: int
) -> None:
    booking_id = _nth(both.sim.world.bookings, booking)
    await both.same_object(f"/booking/{booking_id}")
    client_id = _nth(both.sim.world.clients, client)
    await both.same_object(f"/client/{client_id}")
    for (linked, module), _ in both.sim.world.links.items():
        if linked == client_id:
            await both.same_object(f"/client/{client_id}/moduleLink/{module}")


@SETTINGS
@given(client=PICK, how=st.sampled_from(["email", "name", "phone", "module"]))
async def test_client_searches_equal_booxis(both: Both, client: int, how: str) -> None:
    world = both.sim.world
    found = _nth(world.clients.values(), client)
    params = {"merchantId": str(found["merchantId"])}
    if how == "email":
        params["email"] = found["email"]
    elif how == "name":
        params |= {"firstName": found["firstName"], "lastName": found["lastName"]}
    elif how == "phone":
        params["phoneNumber"] = found["mobilePhoneNumber"] or found["homePhoneNumber"]
    else:
        links = [link for (c, _), link in world.links.items() if c == found["id"]]
        if not links:
            return
        params = {"moduleId": links[0]["moduleId"], "externalId": links[0]["externalId"]}
    await both.same_pages("/client", params)


@SETTINGS
@given(
    which=st.sampled_from(["staff", "service", "serviceCategory"]),
    by_store=st.booleans(),
    store=PICK,
    status=st.none() | st.sampled_from(["Online", "Offline"]),
    method=st.none() | st.sampled_from(BOOKING_METHODS),
)
async def test_directory_lists_equal_booxis(
    both: Both, which: str, by_store: bool, store: int, status: str | None, method: str | None
) -> None:
    params: dict[str, str] = {}
    if by_store:
        params["merchantId"] = str(_nth(both.sim.world.merchants, store))
    if status is not None and which != "serviceCategory":
        params["status"] = status
    if method is not None and which == "service":
        params["bookingMethod"] = method
    await both.same_pages(f"/{which}/list", params)
    table = {"staff": "staff", "service": "services", "serviceCategory": "categories"}[which]
    await both.same_object(f"/{which}/{_nth(getattr(both.sim.world, table), store)}")


@SETTINGS
@given(offset=st.integers(min_value=0, max_value=4), limit=st.integers(1, 4), merchant=PICK)
async def test_merchants_equal_booxis(both: Both, offset: int, limit: int, merchant: int) -> None:
    params = {"offset": str(offset), "limit": str(limit)}
    _, booxi = await both.one("booxi", "GET", "/merchant/list", params=params)
    _, mirror = await both.one("mirror", "GET", "/merchant/list", params=params)
    assert booxi == mirror
    await both.same_object(f"/merchant/{_nth(both.sim.world.merchants, merchant)}")


@SETTINGS
@given(
    which=st.sampled_from(["staff", "service", "serviceCategory", "merchant"]),
    store=PICK,
    other=PICK,
    filtered=st.booleans(),
    offset=st.integers(min_value=0, max_value=3),
    limit=st.integers(min_value=1, max_value=4),
)
async def test_book_now_lists_equal_booxis(
    both: Both, which: str, store: int, other: int, filtered: bool, offset: int, limit: int
) -> None:
    world = both.sim.world
    merchant_id = _nth(world.merchants, store)
    params = {"merchantId": str(merchant_id), "offset": str(offset), "limit": str(limit)}
    if which == "merchant":
        await both.same_object("/merchant", {"merchantId": str(merchant_id)})
        return
    if filtered and which == "staff":
        params["serviceId"] = str(_nth(world.services, other))
    elif filtered and which == "service":
        params["staffId"] = str(_nth(world.staff, other))
    await both.same_object(f"/{which}", params)
