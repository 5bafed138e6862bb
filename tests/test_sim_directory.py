"""Stores, staff, services and categories on the simulator: both list styles."""

from __future__ import annotations

import pytest

from tests.conftest import Sim


@pytest.mark.parametrize(
    ("path", "key", "table"),
    [
        ("/staff/list", "staffs", "staff"),
        ("/service/list", "services", "services"),
        ("/serviceCategory/list", "serviceCategories", "categories"),
    ],
)
async def test_cursor_lists_walk_every_record_once(
    make_sim, path: str, key: str, table: str
) -> None:
    sim = await make_sim(page_size=4)
    items = await sim.page_all(path, {}, key)
    ids = [item["id"] for item in items]
    assert ids == sorted(getattr(sim.world, table))
    merchant = next(iter(sim.world.merchants))
    mine = await sim.page_all(path, {"merchantId": merchant}, key)
    assert mine and all(item["merchantId"] == merchant for item in mine)
    status, body = await sim.get(path, {"merchantId": "x"})
    assert status == 400


async def test_merchant_list_is_offset_paged(make_sim) -> None:
    sim = await make_sim(stores=5)
    status, body = await sim.get("/merchant/list", {"offset": 1, "limit": 2})
    assert status == 200
    assert body["offset"] == 1 and body["limit"] == 2 and body["total"] == 5
    assert [m["id"] for m in body["items"]] == list(sim.world.merchants)[1:3]
    status, body = await sim.get("/merchant/list", {"groupId": 9})
    assert body["total"] == 0
    status, body = await sim.get("/merchant/list", {"limit": 1000})
    assert status == 400 and "limit" in body["message"]
    status, body = await sim.get("/merchant/list", {"offset": -1})
    assert status == 400


async def test_single_objects_and_unknown_ids(sim: Sim) -> None:
    merchant_id = next(iter(sim.world.merchants))
    staff_id = next(iter(sim.world.staff))
    service_id = next(iter(sim.world.services))
    category_id = next(iter(sim.world.categories))
    for path, expected in (
        (f"/merchant/{merchant_id}", sim.world.merchants[merchant_id]),
        (f"/staff/{staff_id}", sim.world.staff[staff_id]),
        (f"/service/{service_id}", sim.world.services[service_id]),
        (f"/serviceCategory/{category_id}", sim.world.categories[category_id]),
        ("/merchant", sim.world.merchants[merchant_id]),
    ):
        status, body = await sim.get(path)
        assert (status, body) == (200, expected), path
    for path in ("/merchant/1", "/staff/1", "/service/1", "/serviceCategory/1"):
        status, body = await sim.get(path)
        assert (status, body["code"]) == (404, 404), path


async def test_book_now_lists_are_offset_paged(sim: Sim) -> None:
    merchant_id = next(iter(sim.world.merchants))
    for path in ("/staff", "/service", "/serviceCategory"):
        status, body = await sim.get(path, {"merchantId": merchant_id, "limit": 2})
        assert status == 200, path
        assert set(body) == {"offset", "limit", "total", "items"}
        assert len(body["items"]) == 2
        assert all(item["merchantId"] == merchant_id for item in body["items"])


async def test_service_availability_offers_only_free_future_times(sim: Sim) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    service = next(s for s in sim.world.services.values() if s["bookingMethod"] == "Appointment")
    params = {
        "from": (now + dt.timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z"),
        "to": (now + dt.timedelta(days=3)).strftime("%Y-%m-%dT00:00:00Z"),
    }
    slots = await sim.page_all(
        f"/service/{service['id']}/availability", params, "serviceAvailability"
    )
    assert slots
    for slot in slots:
        assert sim.world.conflict_for(slot["staffId"], slot["start"], slot["end"]) is None
    status, body = await sim.call(
        "POST",
        "/availability/search",
        json_body={
            "searchMode": "verbose",
            "merchantId": service["merchantId"],
            "range": {"startsOn": params["from"], "endsOn": params["to"]},
            "bookingItems": [{"serviceId": service["id"]}],
        },
    )
    assert status == 200
    assert body["availability"]["bookingTimeSlots"]
    status, body = await sim.get(
        f"/service/{service['id']}/availability",
        {"from": params["from"], "to": "2099-01-01T00:00:00Z"},
    )
    assert status == 400 and "31 days" in body["message"]
