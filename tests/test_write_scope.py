"""Store isolation on writes: a store-bound read+write key reaches no other store's data
through what a write's body names (``api.write_scope``), and Booxi never hears of the
attempt. Over real sockets, the simulator as Booxi."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from mirror.sync import run_pass
from tests.conftest import API_KEY, MirrorApp, Sim, Store, booxi_client, rfc3339

KEY_A = "mirror-write-scope-key-a-0123456789"
WRITES = ("POST", "PUT", "DELETE")


@dataclasses.dataclass
class World:
    """Ids of the simulator's world the cases are made of: store A (the key's) and B."""

    store_a: int
    store_b: int
    staff_a: int
    staff_b: int
    service_a: int
    service_b: int
    client_a: int
    client_b: int  # has a module link
    link_b: tuple[str, str]  # (moduleId, externalId) of client_b
    booking_a: str  # a future appointment of store A
    booking_b: str
    group_event_b: int


@dataclasses.dataclass
class Env:
    sim: Sim
    app: MirrorApp
    store: Store
    session: aiohttp.ClientSession
    world: World

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str = KEY_A,
        headers: dict[str, str] | None = None,
        params: Any = None,
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        async with self.session.request(
            method,
            self.app.url + "/booking/v1" + path,
            data=data,
            params=params,
            headers={"Authorization": f"Bearer {key}", **(headers or {})},
        ) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    async def booxi_requests(self) -> list[dict[str, Any]]:
        return list((await self.sim.control("GET", "/_sim/requests"))["requests"])

    async def calls(self) -> list[dict[str, Any]]:
        """What reached Booxi, but the calendar re-polls a stored booking asks for."""
        return [r for r in await self.booxi_requests() if not r["path"].endswith("/calendar")]

    async def forwarded(self) -> list[dict[str, Any]]:
        return [r for r in await self.booxi_requests() if r["method"] in WRITES]


def _world(sim: Sim) -> World:
    w = sim.world
    store_a, store_b = sorted(w.merchants)[:2]

    def staff(m: int) -> int:
        return min(s["id"] for s in w.staff.values() if s["merchantId"] == m)

    def service(m: int) -> int:
        return min(
            s["id"]
            for s in w.services.values()
            if s["merchantId"] == m and s["bookingMethod"] == "Appointment"
        )

    linked = {link["clientId"]: link for link in w.links.values()}
    client_b = min(c for c, v in w.clients.items() if v["merchantId"] == store_b and c in linked)
    now = rfc3339(dt.datetime.now(dt.UTC))

    def booking(m: int) -> str:
        return min(
            b["bookingId"]
            for b in w.bookings.values()
            if b["merchantId"] == m
            and b["bookingMethod"] == "Appointment"
            and b["startsOn"] > now
            and b["status"] != "Cancelled"
        )

    return World(
        store_a=store_a,
        store_b=store_b,
        staff_a=staff(store_a),
        staff_b=staff(store_b),
        service_a=service(store_a),
        service_b=service(store_b),
        client_a=min(c for c, v in w.clients.items() if v["merchantId"] == store_a),
        client_b=client_b,
        link_b=(linked[client_b]["moduleId"], linked[client_b]["externalId"]),
        booking_a=booking(store_a),
        booking_b=booking(store_b),
        group_event_b=min(
            g for g, v in w.group_events.items() if v["merchantId"] == store_b and v["start"] > now
        ),
    )


async def _env(
    make_sim: Any, store: Store, make_mirror_app: Any, *, warm: bool
) -> AsyncIterator[Env]:
    """``warm``: the mirror has synced (staff, services, bookings, group events) and
    holds client B; otherwise it holds only booking A and client A (read by key A)."""
    sim = await make_sim(days_after=14)
    booxi = booxi_client(sim)
    world = _world(sim)
    keys = [
        {"name": "all", "key": API_KEY, "scopes": ["read", "write"]},
        {"name": "a", "key": KEY_A, "merchant_ids": [world.store_a], "scopes": ["read", "write"]},
    ]
    app = await make_mirror_app(booxi=booxi, api={"keys": keys})
    async with aiohttp.ClientSession() as session:
        env = Env(sim, app, store, session, world)
        if warm:
            assert (await run_pass(booxi, store.writer, store.engine, horizon_days=14)).ok
            assert (await env.call("GET", f"/client/{world.client_b}", key=API_KEY))[0] == 200
        assert (await env.call("GET", f"/booking/{world.booking_a}"))[0] == 200
        assert (await env.call("GET", f"/client/{world.client_a}"))[0] == 200
        await sim.control("DELETE", "/_sim/requests")
        yield env
    await booxi.close()


@pytest.fixture
async def cold(make_sim, store: Store, make_mirror_app) -> AsyncIterator[Env]:
    async for env in _env(make_sim, store, make_mirror_app, warm=False):
        yield env


@pytest.fixture
async def warm(make_sim, store: Store, make_mirror_app) -> AsyncIterator[Env]:
    async for env in _env(make_sim, store, make_mirror_app, warm=True):
        yield env


def _booking(w: World, start: dt.datetime | None = None, **changes: Any) -> dict[str, Any]:
    """A valid booking of store A (key A's own)."""
    start = start or dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=200)
    return {
        "merchantId": w.store_a,
        "bookingMethod": "Appointment",
        "startsOn": rfc3339(start),
        "status": "Approved",
        "staffId": w.staff_a,
        "items": [{"serviceId": w.service_a}],
        "client": {"id": w.client_a},
        **changes,
    }


# (name, method, path, body, status, what the message names)
Case = tuple[str, str, str, dict[str, Any], int, str]


def _cases(w: World) -> list[Case]:
    module_id, external_id = w.link_b
    newcomer = {"firstName": "Nora", "lastName": "Newcomer", "email": "nora@example.org"}
    put_a = f"/booking/{w.booking_a}"
    return [
        ("client.id", "POST", "/booking", _booking(w, client={"id": w.client_b}), 403,
         f"client.id {w.client_b} is not at this key's stores"),
        ("client module link", "POST", "/booking",
         _booking(w, client={**newcomer, "moduleId": module_id, "externalId": external_id}),
         403, "client.moduleId/externalId names a client not at this key's stores"),
        ("clientLinks", "POST", "/booking",
         _booking(w, client=newcomer,
                  clientLinks=[{"moduleId": module_id, "externalId": external_id}]),
         403, "clientLinks[0].moduleId/externalId"),
        ("client.clientLinks[].clientId", "POST", "/booking",
         _booking(w, client={"id": w.client_a, "clientLinks": [{"clientId": w.client_b}]}),
         403, f"client.clientLinks[0].clientId {w.client_b}"),
        ("attendees[].id", "POST", "/booking", _booking(w, attendees=[{"id": w.client_b}]),
         403, f"attendees[0].id {w.client_b}"),
        ("staffId", "POST", "/booking", _booking(w, staffId=w.staff_b), 403,
         f"staffId {w.staff_b} is not at this key's stores"),
        ("createdByStaffId", "POST", "/booking", _booking(w, createdByStaffId=w.staff_b), 403,
         f"createdByStaffId {w.staff_b}"),
        ("items[].serviceId", "POST", "/booking",
         _booking(w, items=[{"serviceId": w.service_a}, {"serviceId": w.service_b}]), 403,
         f"items[1].serviceId {w.service_b}"),
        ("items[].resourceId", "POST", "/booking",
         _booking(w, items=[{"serviceId": w.service_a, "resourceId": 77}]), 403,
         "items[0].resourceId 77"),
        ("groupEventId", "POST", "/booking",
         {"merchantId": w.store_a, "bookingMethod": "GroupReservation",
          "groupEventId": w.group_event_b, "status": "Approved", "client": {"id": w.client_a}},
         403, f"groupEventId {w.group_event_b}"),
        ("merchantId", "POST", "/booking", _booking(w, merchantId=w.store_b), 403,
         f"merchant {w.store_b}"),
        ("PUT client.id", "PUT", put_a, {"client": {"id": w.client_b}}, 403,
         f"client.id {w.client_b}"),
        ("PUT staffId", "PUT", put_a, {"staffId": w.staff_b}, 403, f"staffId {w.staff_b}"),
        ("PUT modifiedByStaffId", "PUT", put_a,
         {"status": "Cancelled", "modifiedByStaffId": w.staff_b}, 403,
         f"modifiedByStaffId {w.staff_b}"),
        ("PUT items[].serviceId", "PUT", put_a, {"items": [{"serviceId": w.service_b}]}, 403,
         f"items[0].serviceId {w.service_b}"),
        ("PUT merchantId", "PUT", put_a, {"merchantId": w.store_b}, 403,
         f"merchant {w.store_b}"),
        ("PUT another store's booking", "PUT", f"/booking/{w.booking_b}",
         {"status": "Cancelled"}, 404, f"Booking {w.booking_b} not found"),
        ("POST client merchantId", "POST", "/client", {"merchantId": w.store_b, **newcomer},
         403, f"merchant {w.store_b}"),
        ("PUT client merchantId", "PUT", f"/client/{w.client_a}",
         {"merchantId": w.store_b}, 403, f"merchant {w.store_b}"),
        ("PUT another store's client", "PUT", f"/client/{w.client_b}", {"lastName": "Mine"},
         404, f"Client {w.client_b} not found"),
        ("PUT another store's client link", "PUT", f"/client/{w.client_b}/moduleLink/crm",
         {"externalId": "STEAL-1"}, 404, f"Client {w.client_b} not found"),
    ]  # fmt: skip


CASE_NAMES = [case[0] for case in _cases(World(1, 2, 3, 4, 5, 6, 7, 8, ("m", "e"), "A", "B", 9))]


async def _refused_without_forwarding(env: Env, name: str, *, group_event_status: int) -> None:
    case = next(c for c in _cases(env.world) if c[0] == name)
    _, method, path, body, status, message = case
    if name == "groupEventId":
        status = group_event_status
    before = await env.store.rows("SELECT id FROM client ORDER BY id")
    got, answer = await env.call(method, path, body, headers={"Idempotency-Key": f"try-{name}"})
    assert got == status, (name, answer)
    assert set(answer) == {"message", "code"} and answer["code"] == status
    if status == 403:
        assert message in answer["message"], answer
    personal = env.sim.world.clients[env.world.client_b]
    for value in (personal["email"], personal["lastName"], personal["firstName"]):
        assert value not in json.dumps(answer)
    assert await env.forwarded() == []
    # whatever the look-ups brought back from store B was not stored
    assert await env.store.rows("SELECT id FROM client ORDER BY id") == before
    assert (
        await env.store.rows(
            "SELECT id FROM client WHERE merchant_id = :b "
            "UNION ALL SELECT id FROM staff WHERE merchant_id = :b "
            "UNION ALL SELECT id FROM service WHERE merchant_id = :b",
            b=env.world.store_b,
        )
        == []
    )


@pytest.mark.parametrize("name", CASE_NAMES)
async def test_a_store_key_is_refused_what_names_another_store_before_booxi_hears(
    cold: Env, name: str
) -> None:
    """Nothing of store B held: what the body names is looked up from Booxi, refused."""
    await _refused_without_forwarding(cold, name, group_event_status=404)


@pytest.mark.parametrize(
    "name", ["client.id", "client module link", "staffId", "items[].serviceId", "groupEventId"]
)
async def test_what_the_mirror_holds_is_checked_without_asking_booxi(warm: Env, name: str) -> None:
    case = next(c for c in _cases(warm.world) if c[0] == name)
    _, method, path, body, status, message = case
    got, answer = await warm.call(method, path, body)
    assert (got, answer["code"]) == (403, 403) and message in answer["message"], answer
    assert await warm.booxi_requests() == []  # held: no look-up either
    # the key that sees every store is not checked here: Booxi decides, as before
    got, _ = await warm.call(method, path, body, key=API_KEY)
    assert got != 403
    assert [r["method"] for r in await warm.forwarded()] == [method]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("staffId", "21002"),
        ("staffId", True),
        ("staffId", -3),
        ("staffId", 0),
        ("staffId", 2**53),
        ("staffId", 1.5),
        ("client", {"id": "12"}),
        ("items", [{"serviceId": False}]),
        ("items", {"serviceId": 1}),
        ("groupEventId", -1),
        ("clientLinks", [{"clientId": 2**60}]),
        ("client", {"moduleId": "crm"}),
    ],
)
async def test_malformed_ids_are_400_before_anything_is_looked_up(
    cold: Env, field: str, value: Any
) -> None:
    got, answer = await cold.call("POST", "/booking", _booking(cold.world, **{field: value}))
    assert got == 400 and set(answer) == {"message", "code"}, answer
    assert await cold.booxi_requests() == []


async def test_own_store_objects_the_mirror_lacks_are_looked_up_and_allowed(cold: Env) -> None:
    w = cold.world
    client = next(
        c
        for c, v in cold.sim.world.clients.items()
        if v["merchantId"] == w.store_a and c != w.client_a
    )
    assert await cold.store.rows("SELECT id FROM client WHERE id = :c", c=client) == []
    body = _booking(w, client={"id": client}, createdByStaffId=w.staff_a)
    got, answer = await cold.call("POST", "/booking", body, params={"merchantId": w.store_b})
    assert got == 200, answer
    booking_id = answer["booking"]["bookingId"]
    calls = await cold.calls()
    assert {(r["method"], r["path"].removeprefix("/booking/v1")) for r in calls} == {
        ("GET", f"/client/{client}"),
        ("GET", f"/staff/{w.staff_a}"),
        ("GET", f"/service/{w.service_a}"),
        ("POST", "/booking"),
    }
    assert [r["query"] for r in calls if r["method"] == "POST"] == [""]  # never passed on
    # the look-ups stored what is the key's: a second write asks Booxi for nothing more
    assert await cold.store.rows("SELECT id FROM client WHERE id = :c", c=client) == [
        {"id": client}
    ]
    await cold.sim.control("DELETE", "/_sim/requests")
    change = {"status": "Cancelled", "modifiedByStaffId": w.staff_a, "client": {"id": client}}
    got, answer = await cold.call("PUT", f"/booking/{booking_id}", change, params={"x": "1"})
    assert got == 200, answer
    calls = await cold.calls()
    assert [(r["method"], r["query"]) for r in calls] == [("PUT", "")]
    # a module link of one of the key's clients: looked up, allowed
    linked = next(
        link
        for link in cold.sim.world.links.values()
        if cold.sim.world.clients[link["clientId"]]["merchantId"] == w.store_a
    )
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=230)
    by_link = _booking(
        w, start, client={"moduleId": linked["moduleId"], "externalId": linked["externalId"]}
    )
    got, answer = await cold.call("POST", "/booking", by_link)
    assert got == 200, answer
    assert answer["booking"]["client"]["id"] == linked["clientId"]


async def test_a_client_booxi_does_not_know_is_404_and_nothing_is_sent(cold: Env) -> None:
    unknown = max(cold.sim.world.clients) + 1000
    got, answer = await cold.call("POST", "/booking", _booking(cold.world, client={"id": unknown}))
    assert (got, answer) == (404, {"message": f"client.id {unknown} not found", "code": 404})
    assert await cold.forwarded() == []


async def test_a_booking_kept_without_personal_data_does_not_store_the_looked_up_client(
    cold: Env,
) -> None:
    w = cold.world
    client = max(c for c, v in cold.sim.world.clients.items() if v["merchantId"] == w.store_a)
    email = cold.sim.world.clients[client]["email"]
    got, answer = await cold.call(
        "POST",
        "/booking",
        _booking(w, client={"id": client}),
        headers={"Booxi-Mirror-Retention": "none"},
    )
    assert got == 200, answer
    rows = await cold.store.rows("SELECT email, raw FROM client WHERE id = :c", c=client)
    assert all(email not in row["raw"] and row["email"] != email.lower() for row in rows)


async def test_booxi_down_during_a_look_up_is_503_and_nothing_is_sent(cold: Env) -> None:
    await cold.sim.control("POST", "/_sim/faults", {"outage": True})
    status, answer = await cold.call(
        "POST", "/booking", _booking(cold.world, staffId=cold.world.staff_b)
    )
    assert status == 503 and set(answer) == {"message", "code"}
    await cold.sim.control("DELETE", "/_sim/faults")
    assert await cold.forwarded() == []


def test_every_case_is_named_once() -> None:
    assert len(set(CASE_NAMES)) == len(CASE_NAMES)
