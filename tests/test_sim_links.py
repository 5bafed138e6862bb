"""Staff and service module links, and the Book Now lists, on the simulator."""

from __future__ import annotations

import datetime as dt

import pytest

from simulator import SimSettings, generate
from simulator.generate import build_world
from tests.conftest import Sim, SimFactory


def _one_of_each(sim: Sim) -> tuple[dict, dict]:
    staff = next(iter(sim.world.staff.values()))
    service = next(iter(sim.world.services.values()))
    return staff, service


async def test_every_staff_member_and_service_has_a_link_in_the_state(sim: Sim) -> None:
    state = await sim.control("GET", "/_sim/state")
    staff_links = {link["staffId"]: link for link in state["staffLinks"]}
    service_links = {link["serviceId"]: link for link in state["serviceLinks"]}
    assert set(staff_links) == set(sim.world.staff)
    assert set(service_links) == set(sim.world.services)
    for staff_id, link in staff_links.items():
        assert link["moduleId"] == "hr" and link["externalId"].startswith("EMP-")
        assert set(link) == {
            "staffId",
            "moduleId",
            "externalId",
            "metadata",
            "createdOn",
            "modifiedOn",
        }
        assert link["createdOn"] == sim.world.staff[staff_id]["createdOn"]
    assert all(
        link["moduleId"] == "pos" and link["externalId"].startswith("SKU-")
        for link in service_links.values()
    )
    assert len({link["externalId"] for link in staff_links.values()}) == len(staff_links)
    assert len({link["externalId"] for link in service_links.values()}) == len(service_links)
    assert {int(k) for k in state["serviceStaff"]} == set(sim.world.services)


def test_links_are_seeded_and_leave_the_rest_of_the_world_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = SimSettings(
        partner_key="p",
        merchant_key="m",
        stores=2,
        staff_per_store=3,
        clients=40,
        anchor=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
    )
    first, again = build_world(settings).state(), build_world(settings).state()
    assert first == again
    monkeypatch.setattr(generate, "_directory_links", lambda rng, world: None)
    without = build_world(settings).state()
    for key in ("staffLinks", "serviceLinks", "serviceStaff"):
        assert first.pop(key) and not without.pop(key)
    assert first == without


@pytest.mark.parametrize(
    ("path", "key", "links", "module"),
    [
        ("/staff/list", "staffs", "staff_links", "hr"),
        ("/service/list", "services", "service_links", "pos"),
    ],
)
async def test_cursor_lists_find_objects_by_module_link(
    sim: Sim, path: str, key: str, links: str, module: str
) -> None:
    for (ident, _), link in list(getattr(sim.world, links).items())[:3]:
        status, body = await sim.get(path, {"moduleId": module, "externalId": link["externalId"]})
        assert status == 200 and [row["id"] for row in body[key]] == [ident]
        status, body = await sim.get(path, {"moduleId": "crm", "externalId": link["externalId"]})
        assert status == 200 and body[key] == []
    status, body = await sim.get(path, {"moduleId": module, "externalId": "NOPE-1"})
    assert status == 200 and body[key] == []
    status, body = await sim.get(path, {"moduleId": module})
    assert status == 400


async def test_module_link_reads(sim: Sim) -> None:
    staff, service = _one_of_each(sim)
    status, body = await sim.get(f"/staff/{staff['id']}/moduleLink/hr")
    assert status == 200
    assert body == {"link": sim.world.staff_links[(staff["id"], "hr")], "staff": staff}
    status, body = await sim.get(f"/service/{service['id']}/moduleLink/pos")
    assert status == 200
    assert body == {"link": sim.world.service_links[(service["id"], "pos")], "service": service}
    for path in (
        f"/staff/{staff['id']}/moduleLink/pos",
        f"/service/{service['id']}/moduleLink/hr",
        "/staff/1/moduleLink/hr",
        "/service/1/moduleLink/pos",
    ):
        status, body = await sim.get(path)
        assert status == 404 and body["code"] == 404, path
    status, body = await sim.get("/staff/x/moduleLink/hr")
    assert status == 400


async def test_each_service_is_performed_by_some_of_its_store_staff(sim: Sim) -> None:
    for service_id, performers in sim.world.service_staff.items():
        store = sim.world.services[service_id]["merchantId"]
        assert performers and performers == sorted(performers)
        assert all(sim.world.staff[s]["merchantId"] == store for s in performers)


async def test_book_now_staff_filtered_by_service(sim: Sim) -> None:
    merchant_id = list(sim.world.merchants)[1]
    status, body = await sim.get("/staff", {"merchantId": merchant_id})
    store_staff = sorted(s for s, m in sim.world.staff.items() if m["merchantId"] == merchant_id)
    assert status == 200 and [s["id"] for s in body["items"]] == store_staff
    assert body["total"] == len(store_staff)
    partial = next(
        (
            sid
            for sid, staff in sim.world.service_staff.items()
            if sim.world.services[sid]["merchantId"] == merchant_id
            and len(staff) < len(store_staff)
        ),
        next(s for s in sim.world.services if sim.world.services[s]["merchantId"] == merchant_id),
    )
    status, body = await sim.get("/staff", {"merchantId": merchant_id, "serviceId": partial})
    assert [s["id"] for s in body["items"]] == sim.world.service_staff[partial]
    status, body = await sim.get("/staff", {"merchantId": merchant_id, "serviceId": 1})
    assert status == 404
    first_store_service = next(
        s for s in sim.world.services if sim.world.services[s]["merchantId"] != merchant_id
    )
    status, body = await sim.get(
        "/staff", {"merchantId": merchant_id, "serviceId": first_store_service}
    )
    assert status == 200 and body["items"] == []


async def test_book_now_staff_lists_online_staff_only(sim: Sim) -> None:
    merchant_id = next(iter(sim.world.merchants))
    offline = next(s for s in sim.world.staff.values() if s["merchantId"] == merchant_id)
    offline["status"] = "Offline"
    status, body = await sim.get("/staff")
    assert status == 200 and offline["id"] not in [s["id"] for s in body["items"]]
    assert body["items"]


async def test_book_now_services_filtered_by_staff_method_and_keywords(sim: Sim) -> None:
    merchant_id = next(iter(sim.world.merchants))
    store = sorted(s for s, v in sim.world.services.items() if v["merchantId"] == merchant_id)
    status, body = await sim.get("/service", {"limit": 100})
    assert status == 200 and [s["id"] for s in body["items"]] == store
    staff_id = next(s for s, v in sim.world.staff.items() if v["merchantId"] == merchant_id)
    status, body = await sim.get("/service", {"staffId": staff_id, "limit": 100})
    performed = [s for s in store if staff_id in sim.world.service_staff[s]]
    assert [s["id"] for s in body["items"]] == performed
    status, body = await sim.get("/service", {"staffId": 1})
    assert status == 404
    status, body = await sim.get("/service", {"bookingMethod": "GroupReservation"})
    assert body["items"] and all(s["bookingMethod"] == "GroupReservation" for s in body["items"])
    name = sim.world.services[store[0]]["name"]
    word = name.split()[0].upper()
    status, body = await sim.get("/service", {"keywords": word, "limit": 100})
    assert body["items"] and all(word.lower() in s["name"].lower() for s in body["items"])
    sim.world.services[store[0]]["status"] = "Offline"
    status, body = await sim.get("/service", {"limit": 100})
    assert store[0] not in [s["id"] for s in body["items"]]


async def test_book_now_categories_of_the_store(make_sim: SimFactory) -> None:
    sim = await make_sim()
    merchant_id = list(sim.world.merchants)[1]
    status, body = await sim.get("/serviceCategory", {"merchantId": merchant_id, "limit": 100})
    expected = sorted(c for c, v in sim.world.categories.items() if v["merchantId"] == merchant_id)
    assert status == 200 and [c["id"] for c in body["items"]] == expected
