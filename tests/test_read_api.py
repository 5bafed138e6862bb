"""The read API: Booxi's answers, from the mirror; coverage and fills; freshness; stores."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import aiohttp
import pytest

from mirror.sync import run_pass
from tests.conftest import API_KEY, MirrorApp, Sim, Store, booxi_client, calendar_params

pytestmark = pytest.mark.both_engines

AUTH = {"Authorization": f"Bearer {API_KEY}"}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


async def _pages(
    session: aiohttp.ClientSession, url: str, params: Any, headers: dict[str, str]
) -> tuple[list[dict], list[dict[str, str]]]:
    """Every page of a cursor-paged answer, and each page's headers."""
    pages, seen_headers = [], []
    async with session.get(url, params=params, headers=headers) as response:
        assert response.status == 200, await response.text()
        pages.append(await response.json())
        seen_headers.append(dict(response.headers))
    while pages[-1]["cursor"]:
        async with session.get(
            url, params={"cursor": pages[-1]["cursor"]}, headers=headers
        ) as response:
            assert response.status == 200, await response.text()
            pages.append(await response.json())
            seen_headers.append(dict(response.headers))
    return pages, seen_headers


def _normalized(pages: list[dict], ordered: str, key_of: dict[str, str]) -> dict[str, Any]:
    """The ``ordered`` list concatenated; every include list as a set by id; other keys."""
    result: dict[str, Any] = {ordered: [item for page in pages for item in page[ordered]]}
    for name, key in key_of.items():
        merged: dict[Any, str] = {}
        for page in pages:
            for item in page[name]:
                merged[item[key]] = json.dumps(item, sort_keys=True)
        result[name] = merged
    for name in pages[0]:
        if name not in result and name != "cursor":
            result[name] = json.dumps(pages[0][name], sort_keys=True)
    return result


async def _synced(
    make_sim, store: Store, make_mirror_app, **sim_options: Any
) -> tuple[Sim, MirrorApp, Any]:
    sim = await make_sim(**sim_options)
    client = booxi_client(sim)
    assert (await run_pass(client, store.writer, store.engine, horizon_days=60)).ok
    app = await make_mirror_app(booxi=client)
    return sim, app, client


async def test_calendars_and_histories_equal_booxis_answers(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim, app, client = await _synced(
        make_sim, store, make_mirror_app, stores=4, staff_per_store=5, clients=80
    )
    rng = random.Random(5)
    key_of = {"bookings": "bookingId", "groupEvents": "id", "services": "id", "timeSlots": "id"}
    async with aiohttp.ClientSession() as session:
        staff_ids = rng.sample(sorted(sim.world.staff), 20)
        for staff_id in staff_ids:
            start = NOW - dt.timedelta(days=rng.randrange(0, 6), hours=rng.randrange(24))
            end = start + dt.timedelta(days=rng.randrange(1, 40))
            params = calendar_params(staff_id, start, end)
            truth, _ = await _pages(sim.session, sim.api + "/calendar", params, {})
            mirrored, headers = await _pages(
                session, app.url + "/booking/v1/calendar", params, AUTH
            )
            assert _normalized(mirrored, "calendarEvents", key_of) == _normalized(
                truth, "calendarEvents", key_of
            ), f"staff {staff_id}"
            assert headers[0]["Cache-Status"] == "booxi-mirror; hit"
            assert "X-Mirror-Synced-At" in headers[0] and int(headers[0]["Age"]) < 120
        client_ids = rng.sample(
            sorted({b["client"]["id"] for b in sim.world.bookings.values()}), 20
        )
        history_keys = {"groupEvents": "id", "services": "id", "staff": "id", "merchants": "id"}
        for client_id in client_ids:
            for query in (
                {"clientId": client_id},
                {
                    "clientId": client_id,
                    "order": "Descending",
                    "from": (NOW - dt.timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            ):
                truth, _ = await _pages(sim.session, sim.api + "/booking", query, {})
                mirrored, _ = await _pages(session, app.url + "/booking/v1/booking", query, AUTH)
                assert _normalized(mirrored, "bookings", history_keys) == _normalized(
                    truth, "bookings", history_keys
                ), f"client {client_id}"
    await client.close()


async def test_a_staff_member_not_polled_is_filled_once_then_local(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim = await make_sim()
    client = booxi_client(sim)
    app = await make_mirror_app(booxi=client)
    staff_id = next(iter(sim.world.staff))
    params = calendar_params(staff_id, NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=5))
    await sim.control("DELETE", "/_sim/requests")
    async with aiohttp.ClientSession() as session:
        first, headers = await _pages(session, app.url + "/booking/v1/calendar", params, AUTH)
        assert headers[0]["Cache-Status"] == "booxi-mirror; fwd=uri-miss; stored"
        calls = len((await sim.control("GET", "/_sim/requests"))["requests"])
        assert calls >= 1
        again, headers = await _pages(session, app.url + "/booking/v1/calendar", params, AUTH)
        assert again == first
        assert headers[0]["Cache-Status"].startswith("booxi-mirror; hit")
        assert len((await sim.control("GET", "/_sim/requests"))["requests"]) == calls
        truth, _ = await _pages(sim.session, sim.api + "/calendar", params, {})
        assert [e for p in first for e in p["calendarEvents"]] == [
            e for p in truth for e in p["calendarEvents"]
        ]
    await client.close()


async def test_outage_reads_answer_stale_and_uncovered_reads_503(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim, app, client = await _synced(make_sim, store, make_mirror_app)
    staff_id = next(iter(sim.world.staff))
    await sim.control("POST", "/_sim/faults", {"outage": True})
    async with booxi_client(sim, timeout_s=1, max_attempts=1) as down:  # a pass fails...
        failed = await run_pass(down, store.writer, store.engine, horizon_days=60)
    assert not failed.ok
    params = calendar_params(staff_id, NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=5))
    async with aiohttp.ClientSession() as session:
        pages, headers = await _pages(session, app.url + "/booking/v1/calendar", params, AUTH)
        assert pages[0]["calendarEvents"]
        assert headers[0]["Cache-Status"] == "booxi-mirror; hit; detail=stale"
        far = calendar_params(staff_id, NOW + dt.timedelta(days=100), NOW + dt.timedelta(days=110))
        async with session.get(
            app.url + "/booking/v1/calendar", params=far, headers=AUTH
        ) as response:
            assert response.status == 503
            body = await response.json()
            assert body["code"] == 503 and "unreachable" in body["message"]
    await client.close()


async def test_a_key_for_one_store_sees_nothing_of_another(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim = await make_sim()
    client = booxi_client(sim)
    assert (await run_pass(client, store.writer, store.engine, horizon_days=60)).ok
    store_a, store_b = sorted(sim.world.merchants)
    key = "store-a-key-0123456789"
    app = await make_mirror_app(
        booxi=client,
        api={"keys": [{"name": "a", "key": key, "merchant_ids": [store_a], "scopes": ["read"]}]},
    )
    headers = {"Booxi-PartnerKey": key}
    staff_b = next(s for s in sim.world.staff.values() if s["merchantId"] == store_b)
    booking_b = next(b for b in sim.world.bookings.values() if b["merchantId"] == store_b)
    client_b = next(c for c in sim.world.clients.values() if c["merchantId"] == store_b)
    service_b = next(s for s in sim.world.services.values() if s["merchantId"] == store_b)
    async with aiohttp.ClientSession() as session:

        async def get(path: str, params: Any = None) -> tuple[int, Any]:
            async with session.get(
                app.url + "/booking/v1" + path, params=params, headers=headers
            ) as response:
                return response.status, await response.json()

        window = calendar_params(staff_b["id"], NOW, NOW + dt.timedelta(days=5))
        assert (await get("/calendar", window))[0] == 404
        assert (await get(f"/booking/{booking_b['bookingId']}"))[0] == 404
        assert (await get(f"/merchant/{store_b}"))[0] == 404
        assert (await get(f"/client/{client_b['id']}"))[0] == 404
        status, history = await get("/booking", {"clientId": booking_b["client"]["id"]})
        assert status == 404 or all(b["merchantId"] == store_a for b in history["bookings"])
        for path, key_name in (
            ("/merchant/list", "items"),
            ("/staff/list", "staffs"),
            ("/service/list", "services"),
            ("/serviceCategory/list", "serviceCategories"),
        ):
            status, body = await get(path)
            assert status == 200
            assert all(
                item.get("merchantId", item.get("id")) == store_a for item in body[key_name]
            ), path
        status, body = await get("/staff/list", {"merchantId": store_b})
        assert body["staffs"] == []
        status, body = await get("/client", {"merchantId": store_b, "email": client_b["email"]})
        assert status == 404 or body["clients"] == []
        assert (
            await get(
                f"/service/{service_b['id']}/availability",
                {
                    "from": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "to": (NOW + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
        )[0] in (403, 404)
    await client.close()


async def test_bookings_written_through_the_mirror_read_back_at_once(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim, app, client = await _synced(make_sim, store, make_mirror_app)
    staff = next(iter(sim.world.staff.values()))
    service = next(
        s
        for s in sim.world.services.values()
        if s["merchantId"] == staff["merchantId"] and s["bookingMethod"] == "Appointment"
    )
    start = (NOW + dt.timedelta(days=3)).replace(minute=0, second=0)
    while sim.world.conflict_for(
        staff["id"],
        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ):
        start += dt.timedelta(minutes=30)
    window = calendar_params(
        staff["id"], start - dt.timedelta(days=1), start + dt.timedelta(days=2)
    )
    base = app.url + "/booking/v1"
    async with aiohttp.ClientSession(headers=AUTH) as session:

        async def read_back(booking_id: str) -> tuple[dict, list[dict]]:
            async with session.get(f"{base}/booking/{booking_id}") as response:
                assert response.status == 200
                booking = (await response.json())["booking"]
            pages, _ = await _pages(session, base + "/calendar", window, {})
            return booking, [
                e for p in pages for e in p["calendarEvents"] if e.get("bookingId") == booking_id
            ]

        async with session.post(
            f"{base}/booking",
            json={
                "merchantId": staff["merchantId"],
                "bookingMethod": "Appointment",
                "startsOn": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "staffId": staff["id"],
                "items": [{"serviceId": service["id"]}],
                "client": {"id": next(iter(sim.world.clients))},
            },
        ) as response:
            assert response.status == 200
            created = (await response.json())["booking"]
        booking, events = await read_back(created["bookingId"])
        assert booking == created
        assert [e["start"] for e in events] == [created["startsOn"]]
        moved = start + dt.timedelta(hours=1)
        while sim.world.conflict_for(
            staff["id"],
            moved.strftime("%Y-%m-%dT%H:%M:%SZ"),
            (moved + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ignore=created["bookingId"],
        ):
            moved += dt.timedelta(minutes=30)
        async with session.put(
            f"{base}/booking/{created['bookingId']}",
            json={"startsOn": moved.strftime("%Y-%m-%dT%H:%M:%SZ")},
        ) as r:
            assert r.status == 200
            rescheduled = (await r.json())["booking"]
        booking, events = await read_back(created["bookingId"])
        assert booking == rescheduled
        assert [e["start"] for e in events] == [rescheduled["startsOn"]]
        async with session.put(
            f"{base}/booking/{created['bookingId']}", json={"status": "Cancelled"}
        ) as r:
            assert r.status == 200
        booking, events = await read_back(created["bookingId"])
        assert booking["status"] == "Cancelled" and events == []
    await client.close()


async def test_outage_every_covered_read_answers_marked_stale(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim, app, client = await _synced(make_sim, store, make_mirror_app)
    booking = next(b for b in sim.world.bookings.values() if b["status"] != "Cancelled")
    base = app.url + "/booking/v1"
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(f"{base}/booking", params={"clientId": booking["client"]["id"]}):
            pass  # the client's history is filled while Booxi answers
        await sim.control("POST", "/_sim/faults", {"outage": True})
        async with booxi_client(sim, timeout_s=1, max_attempts=1) as down:
            assert not (await run_pass(down, store.writer, store.engine, horizon_days=60)).ok
        for path, params in (
            ("/calendar", calendar_params(booking["staffId"], NOW, NOW + dt.timedelta(days=3))),
            (f"/booking/{booking['bookingId']}", None),
            ("/booking", {"clientId": booking["client"]["id"]}),
            ("/staff/list", None),
            ("/merchant/list", None),
        ):
            async with session.get(base + path, params=params) as response:
                assert response.status == 200, (path, await response.text())
                assert response.headers["Cache-Status"] == "booxi-mirror; hit; detail=stale", path
    await client.close()
