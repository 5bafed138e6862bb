"""What an app switching its base URL to the mirror relies on, where Booxi's docs are
silent: honest searches, Booxi's own event ids, coverage edges, store-bound fills."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp

from api.keys import REPOLL
from mirror.sync import run_pass
from simulator.keys import WEBHOOKS
from tests.conftest import (
    API_KEY,
    WEBHOOK_SECRET,
    MirrorApp,
    Sim,
    Store,
    booxi_client,
    calendar_params,
)
from tests.differential import Both

AUTH = {"Authorization": f"Bearer {API_KEY}"}
STORE_KEY = "mirror-store-key-for-tests-0123456789"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


async def _get(
    app: MirrorApp, path: str, params: Any = None, key: str = API_KEY
) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(app.url + "/booking/v1" + path, params=params, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.json()


async def _booxi_calls(sim: Sim, path: str) -> int:
    log = (await sim.control("GET", "/_sim/requests"))["requests"]
    return sum(1 for entry in log if entry["path"] == "/booking/v1" + path)


async def test_a_search_asks_booxi_unless_it_was_answered_lately(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim = await make_sim()
    client = booxi_client(sim)
    app = await make_mirror_app(booxi=client)
    first = next(iter(sim.world.clients.values()))
    assert (await _get(app, f"/client/{first['id']}"))[0] == 200  # the mirror holds one
    status, twin = await sim.call(  # a namesake created at Booxi, unknown to the mirror
        "POST",
        "/client",
        json_body={
            "merchantId": first["merchantId"],
            "firstName": first["firstName"],
            "lastName": first["lastName"],
            "email": "twin@example.org",
        },
    )
    assert status == 200
    name = {
        "merchantId": first["merchantId"],
        "firstName": first["firstName"],
        "lastName": first["lastName"],
    }
    status, headers, body = await _get(app, "/client", name)
    assert status == 200
    found = {c["id"] for c in body["clients"]}
    assert {first["id"], (twin.get("client") or twin)["id"]} <= found
    assert headers["Cache-Status"] == "booxi-mirror; fwd=uri-miss; stored"
    # the same search again: answered lately, so from the mirror alone
    calls = await _booxi_calls(sim, "/client")
    status, headers, again = await _get(app, "/client", name)
    assert (status, again) == (200, body)
    assert headers["Cache-Status"] == "booxi-mirror; hit"
    assert await _booxi_calls(sim, "/client") == calls
    # Booxi down: a search not answered lately gives what the mirror holds, marked
    await sim.control("POST", "/_sim/faults", {"outage": True})
    by_email = {"merchantId": first["merchantId"], "email": "twin@example.org"}
    down = booxi_client(sim, timeout_s=0.5, max_attempts=1)
    offline = await make_mirror_app(booxi=down)
    status, headers, partial = await _get(offline, "/client", by_email)
    assert status == 200
    assert [c["email"] for c in partial["clients"]] == ["twin@example.org"]
    assert headers["Cache-Status"] == "booxi-mirror; hit; detail=partial"
    await down.close()
    await client.close()


async def test_webhook_bookings_get_booxis_event_ids_within_seconds(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim = await make_sim(webhook_secret=WEBHOOK_SECRET, days_after=10)
    client = booxi_client(sim)
    assert (await run_pass(client, store.writer, store.engine, horizon_days=10)).ok
    app = await make_mirror_app(booxi=client)
    sim.server.app[WEBHOOKS].urls = (app.webhook_url,)
    changed = (await sim.control("POST", "/_sim/mutate", {"count": 12, "seed": 3}))["changed"]
    await sim.control("POST", "/_sim/webhooks/drain")
    derived = await store.rows("SELECT count(*) AS n FROM calendar_event WHERE provisional")
    assert derived[0]["n"] > 0  # events derived from the webhooks' bookings, ids made up

    async def only_booxis_ids() -> bool:
        rows = await store.rows("SELECT count(*) AS n FROM calendar_event WHERE id < 0")
        return rows[0]["n"] == 0

    await _wait_for(only_booxis_ids)  # re-polled without any read asking for it
    await app.server.app[REPOLL].drain()
    staff_ids = {sim.world.bookings[b]["staffId"] for b in changed if b in sim.world.bookings}
    staff_ids.discard(None)  # requests no one has taken: on no calendar
    async with aiohttp.ClientSession() as session:
        both = Both(sim, app.url, session)
        for staff_id in sorted(staff_ids):
            params = calendar_params(staff_id, NOW, NOW + dt.timedelta(days=7))
            await both.same_pages("/calendar", params)
    await client.close()


async def test_a_calendar_reaching_further_back_than_held_answers_what_is_held(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim = await make_sim(days_before=20, days_after=5)
    client = booxi_client(sim)
    assert (await run_pass(client, store.writer, store.engine, horizon_days=5)).ok
    app = await make_mirror_app(booxi=client)
    staff_id = next(iter(sim.world.staff))
    start = NOW - dt.timedelta(days=15)
    params = calendar_params(staff_id, start, NOW + dt.timedelta(days=2))
    status, headers, body = await _get(app, "/calendar", params)
    assert status == 200, body
    assert headers["X-Mirror-Coverage"] == "partial"
    covered_from = dt.datetime.strptime(headers["X-Mirror-Covered-From"], "%Y-%m-%dT%H:%M:%S%z")
    assert NOW - dt.timedelta(days=8) < covered_from < NOW - dt.timedelta(days=6)
    held = [e for e in body["calendarEvents"] if e["end"] >= headers["X-Mirror-Covered-From"]]
    assert held == body["calendarEvents"]  # nothing invented before the covered part
    await client.close()


async def test_a_store_key_fills_what_belongs_to_its_store_only(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim = await make_sim()
    client = booxi_client(sim)
    mine, theirs = list(sim.world.merchants)[:2]
    app = await make_mirror_app(
        booxi=client,
        api={
            "keys": [
                {"name": "all", "key": API_KEY, "scopes": ["read", "write"]},
                {"name": "store", "key": STORE_KEY, "merchant_ids": [mine], "scopes": ["read"]},
            ]
        },
    )
    own = next(b for b in sim.world.bookings.values() if b["merchantId"] == mine)
    other = next(b for b in sim.world.bookings.values() if b["merchantId"] == theirs)
    status, _, body = await _get(app, f"/booking/{own['bookingId']}", key=STORE_KEY)
    assert status == 200 and body["booking"] == own
    status, _, _ = await _get(app, f"/booking/{other['bookingId']}", key=STORE_KEY)
    assert status == 404
    other_client = next(c for c in sim.world.clients.values() if c["merchantId"] == theirs)
    status, _, _ = await _get(app, f"/client/{other_client['id']}", key=STORE_KEY)
    assert status == 404
    stored = await store.rows("SELECT booking_id FROM booking")
    assert [row["booking_id"] for row in stored] == [own["bookingId"]]
    assert await store.rows("SELECT id FROM client WHERE id = :i", i=other_client["id"]) == []
    await client.close()


async def _wait_for(check: Any, within_s: float = 10) -> None:
    """Poll ``check`` (a database read) until it holds."""
    async with asyncio.timeout(within_s):
        while not await check():  # noqa: ASYNC110 - nothing to wait on but the database
            await asyncio.sleep(0.1)


async def test_events_of_a_write_never_carry_made_up_ids(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim = await make_sim(days_after=10)
    client = booxi_client(sim, timeout_s=0.5, max_attempts=1)
    assert (await run_pass(client, store.writer, store.engine, horizon_days=10)).ok
    app = await make_mirror_app(booxi=client)
    staff = next(iter(sim.world.staff.values()))
    service = next(
        s
        for s in sim.world.services.values()
        if s["merchantId"] == staff["merchantId"] and s["bookingMethod"] == "Appointment"
    )
    start = (NOW + dt.timedelta(days=2)).replace(minute=0)
    while sim.world.conflict_for(
        staff["id"],
        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ):
        start += dt.timedelta(minutes=30)
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.post(
            app.url + "/booking/v1/booking",
            json={
                "merchantId": staff["merchantId"],
                "bookingMethod": "Appointment",
                "startsOn": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "status": "Approved",
                "staffId": staff["id"],
                "items": [{"serviceId": service["id"]}],
                "client": {"id": next(iter(sim.world.clients))},
            },
        ) as response,
    ):
        assert response.status == 200
        booking_id = (await response.json())["booking"]["bookingId"]
    await sim.control("POST", "/_sim/faults", {"outage": True})  # Booxi gone at once
    window = calendar_params(staff["id"], NOW, NOW + dt.timedelta(days=7), ("Appointment",))
    status, _, body = await _get(app, "/calendar", window)
    assert status == 200
    mine = [e for e in body["calendarEvents"] if e["bookingId"] == booking_id]
    assert [e["id"] for e in mine] == [None]  # shown, but with no id Booxi did not give
    assert all(e["id"] is None or e["id"] > 0 for e in body["calendarEvents"])
    await sim.control("DELETE", "/_sim/faults")  # Booxi back: the next poll brings its id
    assert (await run_pass(client, store.writer, store.engine, horizon_days=10)).ok
    status, _, body = await _get(app, "/calendar", window)
    mine = [e for e in body["calendarEvents"] if e["bookingId"] == booking_id]
    _, booxi = await sim.get("/calendar", window)
    assert mine == [e for e in booxi["calendarEvents"] if e["bookingId"] == booking_id]
    assert isinstance(mine[0]["id"], int)  # Booxi is back: its own id
    await client.close()
