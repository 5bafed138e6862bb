"""Book Now lists, staff/service module-link lookups and merchant keys, through the mirror
over real sockets, compared with what the simulator (Booxi) answers."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
import pytest

from mirror.config import Config
from mirror.errors import ConfigError
from mirror.sync import run_pass
from tests.conftest import API_KEY, MirrorApp, Sim, Store, booxi_client

PARTNER = {"Authorization": f"Bearer {API_KEY}"}
PUBLIC_KEY = "mirror-public-key-for-store-a-0123"
STORE_A_KEY = "mirror-store-a-partner-key-0123456"
TWO_STORES_KEY = "mirror-two-stores-partner-key-0123"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _keys(store_a: int, store_b: int) -> list[dict[str, Any]]:
    return [
        {"name": "all", "key": API_KEY, "scopes": ["read", "write"]},
        {"name": "form-a", "key": PUBLIC_KEY, "kind": "merchant", "merchant_ids": [store_a]},
        {"name": "store-a", "key": STORE_A_KEY, "merchant_ids": [store_a]},
        {"name": "two", "key": TWO_STORES_KEY, "merchant_ids": [store_a, store_b]},
    ]


def _wire(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Caller:
    """GETs against the mirror (or the simulator) with one set of headers."""

    def __init__(self, session: aiohttp.ClientSession, base: str, headers: dict[str, str]):
        self.session, self.base, self.headers = session, base, headers

    async def call(
        self, method: str, path: str, params: Any = None, body: Any = None
    ) -> tuple[int, Any, dict[str, str]]:
        async with self.session.request(
            method, self.base + path, params=params, json=body, headers=self.headers
        ) as response:
            return response.status, await response.json(), dict(response.headers)

    async def get(self, path: str, params: Any = None) -> tuple[int, Any]:
        status, body, _ = await self.call("GET", path, params)
        return status, body

    async def offset_items(self, path: str, params: dict[str, Any], limit: int = 2) -> list[Any]:
        """Every item of an offset-paged list, ``limit`` at a time."""
        items: list[Any] = []
        while True:
            status, body = await self.get(path, {**params, "offset": len(items), "limit": limit})
            assert status == 200, (path, body)
            assert isinstance(body["total"], int) and body["limit"] == limit
            assert body["offset"] == len(items)
            items += body["items"]
            if len(items) >= body["total"] or not body["items"]:
                return items

    async def cursor_items(self, path: str, params: dict[str, Any], key: str) -> list[Any]:
        status, body = await self.get(path, params)
        assert status == 200, (path, body)
        items = list(body[key])
        while body.get("cursor"):
            status, body = await self.get(path, {"cursor": body["cursor"]})
            assert status == 200, (path, body)
            items += body[key]
        return items


async def _started(
    make_sim, make_mirror_app, *, client_options: Any = None, **config: Any
) -> tuple[Sim, MirrorApp, Any, int, int]:
    sim = await make_sim(stores=2, staff_per_store=5)
    store_a, store_b = sorted(sim.world.merchants)[:2]
    client = booxi_client(sim, **(client_options or {}))
    app = await make_mirror_app(booxi=client, api={"keys": _keys(store_a, store_b)}, **config)
    return sim, app, client, store_a, store_b


async def _sync(client: Any, store: Store) -> None:
    assert (await run_pass(client, store.writer, store.engine, horizon_days=30)).ok


async def _booxi_calls(sim: Sim) -> list[str]:
    return [r["path"] for r in (await sim.control("GET", "/_sim/requests"))["requests"]]


async def test_a_booking_form_through_the_mirror_equals_booxi(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim, app, client, store_a, _ = await _started(make_sim, make_mirror_app)
    await _sync(client, store)
    state = await sim.control("GET", "/_sim/state")
    async with aiohttp.ClientSession() as session:
        booxi = Caller(sim.session, sim.api, {})
        form = Caller(session, app.url + "/booking/v1", {"Booxi-APIKey": PUBLIC_KEY})
        partner = Caller(session, app.url + "/booking/v1", PARTNER)
        at_a = {"merchantId": store_a}

        status, merchant = await form.get("/merchant")
        assert status == 200 and merchant == (await booxi.get("/merchant", at_a))[1]
        assert merchant["id"] == store_a
        staff = await form.offset_items("/staff", {})
        assert staff == await booxi.offset_items("/staff", at_a, limit=50)
        assert staff and all(s["status"] == "Online" for s in staff)
        services = await form.offset_items("/service", {})
        assert services == await booxi.offset_items("/service", at_a, limit=50)
        categories = await form.offset_items("/serviceCategory", {})
        assert categories == await booxi.offset_items("/serviceCategory", at_a, limit=50)
        for service in services:
            params = {"serviceId": service["id"]}
            mirrored = await form.offset_items("/staff", params)
            assert mirrored == await booxi.offset_items("/staff", {**at_a, **params}, limit=50)
            performing = set(state["serviceStaff"][str(service["id"])])
            assert {s["id"] for s in mirrored} <= performing
        for member in staff:
            params = {"staffId": member["id"]}
            mirrored = await form.offset_items("/service", params)
            assert mirrored == await booxi.offset_items("/service", {**at_a, **params}, limit=50)
        word = services[0]["name"].split()[0].upper()
        for params in ({"keywords": word}, {"bookingMethod": "Appointment", "keywords": word}):
            mirrored = await form.offset_items("/service", params)
            assert mirrored and mirrored == await booxi.offset_items(
                "/service", {**at_a, **params}, limit=50
            )

        # asked again: from the mirror, Booxi is not called
        await sim.control("DELETE", "/_sim/requests")
        status, body, headers = await form.call("GET", "/staff", {"serviceId": services[0]["id"]})
        assert status == 200 and headers["Cache-Status"] == "booxi-mirror; hit"
        assert await _booxi_calls(sim) == []

        # staff by employee number, service by SKU: Booxi's answers
        chosen = staff[-1]
        employee = next(
            link["externalId"]
            for link in state["staffLinks"]
            if link["staffId"] == chosen["id"] and link["moduleId"] == "hr"
        )
        lookup = {"moduleId": "hr", "externalId": employee}
        found = await partner.cursor_items("/staff/list", lookup, "staffs")
        assert found == await booxi.cursor_items("/staff/list", lookup, "staffs")
        assert [s["id"] for s in found] == [chosen["id"]]
        sku = next(
            link["externalId"]
            for link in state["serviceLinks"]
            if link["serviceId"] == services[0]["id"]
        )
        lookup = {"moduleId": "pos", "externalId": sku}
        found_services = await partner.cursor_items("/service/list", lookup, "services")
        assert found_services == await booxi.cursor_items("/service/list", lookup, "services")
        assert [s["id"] for s in found_services] == [services[0]["id"]]
        unknown = {"moduleId": "hr", "externalId": "EMP-nobody"}
        assert await partner.cursor_items("/staff/list", unknown, "staffs") == []
        await sim.control("DELETE", "/_sim/requests")
        assert await partner.cursor_items("/staff/list", unknown, "staffs") == []
        assert await _booxi_calls(sim) == []  # Booxi's "nobody" is remembered too

        # and the booking made with what the form found is Booxi's
        service = next(s for s in services if s["bookingMethod"] == "Appointment")
        performers = await form.offset_items("/staff", {"serviceId": service["id"]})
        # a free three hours of one performer (the world is random: look over a few days)
        start, member = next(
            (begin, m)
            for begin in (
                (NOW + dt.timedelta(days=4, hours=h)).replace(minute=0, second=0)
                for h in range(0, 24 * 6, 5)
            )
            for m in performers
            if not sim.world.conflict_for(
                m["id"], _wire(begin), _wire(begin + dt.timedelta(hours=3))
            )
        )
        status, created, _ = await partner.call(
            "POST",
            "/booking",
            body={
                "merchantId": store_a,
                "bookingMethod": "Appointment",
                "startsOn": _wire(start),
                "status": "Approved",
                "staffId": member["id"],
                "items": [{"serviceId": service["id"]}],
                "client": {"firstName": "Ada", "lastName": "Form", "email": "ada@example.com"},
            },
        )
        assert status == 200, created
        booking = created.get("booking", created)
        assert booking == sim.world.bookings[booking["bookingId"]]
        assert (booking["staffId"], booking["items"][0]["serviceId"]) == (
            member["id"],
            service["id"],
        )
    await client.close()


async def test_merchant_key_reaches_only_booxis_public_routes(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim, app, client, store_a, store_b = await _started(make_sim, make_mirror_app)
    await _sync(client, store)
    service = next(s for s in sim.world.services.values() if s["merchantId"] == store_a)
    staff = next(s for s in sim.world.staff.values() if s["merchantId"] == store_a)
    booking = next(iter(sim.world.bookings.values()))
    span = {"from": _wire(NOW + dt.timedelta(days=1)), "to": _wire(NOW + dt.timedelta(days=2))}
    search = {
        "searchMode": "verbose",
        "merchantId": store_a,
        "range": {"startsOn": span["from"], "endsOn": span["to"]},
        "bookingItems": [{"serviceId": service["id"]}],
    }
    base = app.url + "/booking/v1"
    async with aiohttp.ClientSession() as session:
        form = Caller(session, base, {"Booxi-APIKey": PUBLIC_KEY})
        for method, path, params, body in (
            ("GET", "/merchant", None, None),
            ("GET", "/staff", {"serviceId": service["id"]}, None),
            ("GET", "/service", {"staffId": staff["id"]}, None),
            ("GET", "/serviceCategory", None, None),
            ("GET", f"/service/{service['id']}/availability", span, None),
            ("POST", "/availability/search", None, search),
        ):
            status, answer, _ = await form.call(method, path, params, body)
            assert status == 200, (path, answer)
        refused: list[tuple[str, str, Any, Any]] = [
            ("GET", "/staff/list", None, None),
            ("GET", "/merchant/list", None, None),
            ("GET", f"/merchant/{store_a}", None, None),
            ("GET", f"/booking/{booking['bookingId']}", None, None),
            ("GET", "/client", {"merchantId": store_a, "email": "x@example.com"}, None),
            ("POST", "/booking", None, {"merchantId": store_a}),
            ("PUT", f"/booking/{booking['bookingId']}", None, {"status": "Cancelled"}),
        ]
        for method, path, params, body in refused:
            status, answer, _ = await form.call(method, path, params, body)
            assert status == 403, (method, path, answer)
            assert answer["code"] == 403 and "merchant key" in answer["message"]
        status, answer, _ = await form.call("GET", "/nowhere")
        assert status == 404 and answer["code"] == 404
        status, answer = await form.get("/staff", {"merchantId": store_b})
        assert status == 404 and set(answer) == {"message", "code"}
        wrong_headers: tuple[dict[str, str], ...] = (
            {"Authorization": f"Bearer {PUBLIC_KEY}"},
            {"Booxi-PartnerKey": PUBLIC_KEY},
            {"Booxi-APIKey": API_KEY},
            {"Booxi-APIKey": STORE_A_KEY},
            {"Booxi-APIKey": "not-a-key-at-all"},
            {},
        )
        for headers in wrong_headers:
            status, answer = await Caller(session, base, headers).get("/merchant")
            assert status == 401 and answer["code"] == 401, headers
            assert PUBLIC_KEY not in answer["message"] and API_KEY not in answer["message"]
        status, _ = await Caller(session, base, {"Booxi-PartnerKey": API_KEY}).get(
            "/merchant", {"merchantId": store_a}
        )
        assert status == 200
    await client.close()


async def test_which_store_a_key_gets(make_sim, store: Store, make_mirror_app) -> None:
    sim, app, client, store_a, store_b = await _started(make_sim, make_mirror_app)
    await _sync(client, store)
    state = await sim.control("GET", "/_sim/state")
    staff_b = next(s for s in sim.world.staff.values() if s["merchantId"] == store_b)
    employee_b = next(
        link["externalId"] for link in state["staffLinks"] if link["staffId"] == staff_b["id"]
    )
    base = app.url + "/booking/v1"
    async with aiohttp.ClientSession() as session:
        bound = Caller(session, base, {"Booxi-PartnerKey": STORE_A_KEY})
        two = Caller(session, base, {"Authorization": f"Bearer {TWO_STORES_KEY}"})
        every = Caller(session, base, PARTNER)

        status, merchant = await bound.get("/merchant")
        assert status == 200 and merchant["id"] == store_a
        items = await bound.offset_items("/staff", {})
        assert items and all(s["merchantId"] == store_a for s in items)
        for path in ("/merchant", "/staff", "/service", "/serviceCategory"):
            status, answer = await bound.get(path, {"merchantId": store_b})
            assert status == 404, path
            for caller in (two, every):
                status, answer = await caller.get(path)
                assert status == 400 and answer["message"] == "merchantId is required", path
        status, merchant = await two.get("/merchant", {"merchantId": store_b})
        assert status == 200 and merchant["id"] == store_b
        lookup = {"moduleId": "hr", "externalId": employee_b}
        assert await bound.cursor_items("/staff/list", lookup, "staffs") == []
        found = await every.cursor_items("/staff/list", lookup, "staffs")
        assert [s["id"] for s in found] == [staff_b["id"]]
        # a service of another store: an empty list, as Booxi gives, without asking it
        service_b = next(s for s in sim.world.services.values() if s["merchantId"] == store_b)
        await sim.control("DELETE", "/_sim/requests")
        status, answer = await two.get(
            "/staff", {"merchantId": store_a, "serviceId": service_b["id"]}
        )
        assert status == 200 and answer["items"] == [] and answer["total"] == 0
        assert await _booxi_calls(sim) == []
        status, answer = await two.get("/staff", {"merchantId": store_a, "serviceId": 999999})
        assert status == 404 and answer["code"] == 404
    await client.close()


async def test_a_store_not_polled_is_fetched_on_first_demand(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim, app, client, store_a, _ = await _started(make_sim, make_mirror_app)
    async with aiohttp.ClientSession() as session:
        form = Caller(session, app.url + "/booking/v1", {"Booxi-APIKey": PUBLIC_KEY})
        booxi = Caller(sim.session, sim.api, {})
        status, body, headers = await form.call("GET", "/serviceCategory")
        assert status == 200 and headers["Cache-Status"] == "booxi-mirror; fwd=uri-miss; stored"
        assert (
            body["items"]
            == (await booxi.get("/serviceCategory", {"merchantId": store_a}))[1]["items"]
        )
        await sim.control("DELETE", "/_sim/requests")
        status, body, headers = await form.call("GET", "/staff")
        assert status == 200 and headers["Cache-Status"] == "booxi-mirror; hit"
        assert await _booxi_calls(sim) == []
        assert body["items"] == await booxi.offset_items("/staff", {"merchantId": store_a}, 50)
    await client.close()


async def test_who_performs_what_is_asked_again_once_older_than_the_interval(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim, app, client, store_a, _ = await _started(
        make_sim,
        make_mirror_app,
        client_options={"timeout_s": 1, "max_attempts": 1},
        sync={"reference_interval_s": 0.5},
    )
    await _sync(client, store)
    service = next(
        s
        for s in sim.world.services.values()
        if s["merchantId"] == store_a and s["status"] == "Online"
    )
    async with aiohttp.ClientSession() as session:
        form = Caller(session, app.url + "/booking/v1", {"Booxi-APIKey": PUBLIC_KEY})
        first = await form.offset_items("/staff", {"serviceId": service["id"]})
        assert first
        sim.world.service_staff[service["id"]] = []
        assert await form.offset_items("/staff", {"serviceId": service["id"]}) == first
        await _wait(0.6)
        assert await form.offset_items("/staff", {"serviceId": service["id"]}) == []

        # Booxi unreachable: what the mirror holds, marked stale; what it lacks, a 503
        await _wait(0.6)
        await sim.control("POST", "/_sim/faults", {"outage": True})
        status, body, headers = await form.call("GET", "/staff", {"serviceId": service["id"]})
        assert status == 200 and body["items"] == []
        assert headers["Cache-Status"] == "booxi-mirror; hit; detail=stale"
        staff_id = first[0]["id"]
        status, body, headers = await form.call("GET", "/service", {"staffId": staff_id})
        assert status == 503 and body["code"] == 503 and "Retry-After" in headers
        await sim.control("POST", "/_sim/faults", {"outage": False})
    await client.close()


async def _wait(seconds: float) -> None:
    await asyncio.sleep(seconds)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"merchant_ids": ["*"]},
            'key "form" is a merchant key: give exactly one store, e.g. merchant_ids = [34497]',
        ),
        (
            {"merchant_ids": [1, 2]},
            'key "form" is a merchant key: give exactly one store, e.g. merchant_ids = [34497]',
        ),
        (
            {"merchant_ids": [1], "scopes": ["read", "write"]},
            'key "form" is a merchant key, which is read-only: scopes = ["read"]',
        ),
    ],
)
def test_a_merchant_key_is_bound_to_one_store_and_read_only(
    tmp_path: Any, entry: dict[str, Any], message: str
) -> None:
    from mirror.config import load_config

    lines = ["[[api.keys]]", 'name = "form"', 'key = "public-key-0123456789"', 'kind = "merchant"']
    for name, value in entry.items():
        shown = ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in value)
        lines.append(f"{name} = [{shown}]")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, {})
    assert str(raised.value) == f"{path} [[api.keys]] #1: {message}"
    assert "public-key-0123456789" not in str(raised.value)
    assert "\n" not in str(raised.value)


def test_keys_are_partner_keys_by_default() -> None:
    config = Config.model_validate({"api": {"keys": [{"name": "a", "key": "abcdef-0123456789"}]}})
    assert config.api.keys[0].kind == "partner"


async def test_an_external_id_moved_to_another_staff_member_is_followed(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim, app, client, store_a, _ = await _started(
        make_sim, make_mirror_app, sync={"reference_interval_s": 0.5}
    )
    await _sync(client, store)
    first, second = sorted(
        s for s in sim.world.staff if sim.world.staff[s]["merchantId"] == store_a
    )[:2]
    link = sim.world.staff_links[(first, "hr")]
    lookup = {"moduleId": "hr", "externalId": link["externalId"]}
    async with aiohttp.ClientSession() as session:
        partner = Caller(session, app.url + "/booking/v1", PARTNER)
        found = await partner.cursor_items("/staff/list", lookup, "staffs")
        assert [s["id"] for s in found] == [first]
        del sim.world.staff_links[(first, "hr")]
        sim.world.staff_links[(second, "hr")] = {**link, "staffId": second}
        assert [s["id"] for s in await partner.cursor_items("/staff/list", lookup, "staffs")] == [
            first
        ]
        await _wait(0.6)
        found = await partner.cursor_items("/staff/list", lookup, "staffs")
        assert found == await Caller(sim.session, sim.api, {}).cursor_items(
            "/staff/list", lookup, "staffs"
        )
        assert [s["id"] for s in found] == [second]
    await client.close()
