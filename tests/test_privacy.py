"""Personal data: retention, erasure, bookings without retention, nothing in logs. Each
checked by reading the SQLite file itself (and its WAL) for the values."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mirror.privacy import enforce_retention
from mirror.sync import run_pass
from tests.conftest import API_KEY, WEBHOOK_SECRET, Sim, Store, booxi_client

AUTH = {"Authorization": f"Bearer {API_KEY}"}
NOW = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    wal = Path(str(path) + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def _values(client: dict[str, Any]) -> list[str]:
    return [
        v for v in (client["email"], client["mobilePhoneNumber"], client["homePhoneNumber"]) if v
    ]


async def _wired(make_sim, make_mirror_app, store: Store) -> tuple[Sim, Any, Any]:
    """A mirror with webhooks from the simulator, filled by a pass, clients fetched."""
    app_holder: list[Any] = []
    sim_holder: list[Sim] = []
    client = None

    # the mirror app must exist before the simulator (its URL), and needs the client
    async def start() -> None:
        nonlocal client
        placeholder = await make_mirror_app()
        sim = await make_sim(
            webhook_urls=(placeholder.webhook_url,),
            webhook_secret=WEBHOOK_SECRET,
            days_after=4,
            clients=150,
        )
        client = booxi_client(sim)
        app_holder.append(await make_mirror_app(booxi=client))
        sim_holder.append(sim)

    await start()
    sim, app = sim_holder[0], app_holder[0]
    assert client is not None
    assert (await run_pass(client, store.writer, store.engine, horizon_days=60)).ok
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for client_id in list(sim.world.clients)[:25]:
            async with session.get(f"{app.url}/booking/v1/client/{client_id}") as response:
                assert response.status == 200
            async with session.get(
                f"{app.url}/booking/v1/booking", params={"clientId": client_id}
            ) as response:
                assert response.status in (200, 404)
    await sim.control("POST", "/_sim/mutate", {"count": 30, "seed": 2})
    await sim.control("POST", "/_sim/webhooks/drain")
    return sim, app, client


async def test_retention_of_zero_days_leaves_no_past_client_in_the_file(
    make_sim, make_mirror_app, store: Store
) -> None:
    sim, _app, client = await _wired(make_sim, make_mirror_app, store)
    # The simulator stamps a booking's every change at least a second after its last, so
    # one changed twice within a second carries a modifiedOn ahead of the clock; a
    # cancellation stamped ahead is not past yet (a client whose bookings were all
    # cancelled is past at the latest cancellation): wait until every stamp has passed.
    stamped = max(dt.datetime.fromisoformat(b["modifiedOn"]) for b in sim.world.bookings.values())
    ahead = (stamped - dt.datetime.now(dt.UTC)).total_seconds()
    await asyncio.sleep(max(0.0, ahead + 1.0))  # stamps are whole seconds
    now = _utc_now()
    assert now > stamped.strftime("%Y-%m-%dT%H:%M:%SZ")
    outcome = await enforce_retention(store.writer, 0)
    assert outcome.anonymized
    future = {
        b["client"]["id"]
        for b in sim.world.bookings.values()
        if b["status"] != "Cancelled" and b["totalClientTimespan"]["end"] > now
    }
    held = _file_bytes(store.path)
    past = [c for c in sim.world.clients.values() if c["id"] not in future]
    retained = [c for c in sim.world.clients.values() if c["id"] in future]
    assert past and retained
    for person in past:
        for value in _values(person):
            assert value.encode() not in held, f"client {person['id']}: {value}"
    shared = {c["lastName"] for c in retained} | {c["firstName"] for c in retained}
    shared |= {s["lastName"] for s in sim.world.staff.values()}
    shared |= {s["firstName"] for s in sim.world.staff.values()}
    shared |= {m["contactLastName"] for m in sim.world.merchants.values()}
    for person in past:
        if person["lastName"] not in shared:
            assert person["lastName"].encode() not in held
            assert person["lastName"].lower().encode() not in held
    found = [c for c in retained if c["email"].encode() in held]
    assert found, "clients with future bookings keep their data"
    report = await store.rows("SELECT count(*) AS n FROM pii_block WHERE reason = 'retention'")
    assert report[0]["n"] == len(outcome.anonymized)
    await client.close()


async def test_an_erased_client_is_found_nowhere_in_the_file(
    make_sim, make_mirror_app, store: Store
) -> None:
    sim, app, client = await _wired(make_sim, make_mirror_app, store)
    person = sim.world.clients[next(iter(sim.world.clients))]
    email = person["email"]
    assert email.encode() in _file_bytes(store.path)
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for booking in [
            b
            for b in sim.world.bookings.values()
            if b["client"]["id"] == person["id"]
            and b["status"] != "Cancelled"
            and b["startsOn"] > NOW
        ]:
            async with session.put(
                f"{app.url}/booking/v1/booking/{booking['bookingId']}", json={"status": "Cancelled"}
            ) as response:
                assert response.status == 200
        async with session.delete(f"{app.url}/booking/v1/client/{person['id']}") as response:
            assert response.status == 204, await response.text()
    await sim.control("POST", "/_sim/webhooks/drain")
    await store.writer.checkpoint()
    held = _file_bytes(store.path)
    for value in _values(person):
        assert value.encode() not in held
    rows = await store.rows("SELECT raw FROM booking WHERE client_id = :c", c=person["id"])
    assert rows and all(email not in r["raw"] for r in rows)
    await client.close()


async def test_a_booking_without_retention_never_brings_its_client_into_the_file(
    make_sim, make_mirror_app, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    sim, app, client = await _wired(make_sim, make_mirror_app, store)
    staff = next(iter(sim.world.staff.values()))
    service = next(
        s
        for s in sim.world.services.values()
        if s["merchantId"] == staff["merchantId"] and s["bookingMethod"] == "Appointment"
    )
    start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start += dt.timedelta(days=4)
    while sim.world.conflict_for(
        staff["id"],
        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ):
        start += dt.timedelta(minutes=30)
    email, phone = "walk.in.private@example.org", "+15145559876"
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.post(
            f"{app.url}/booking/v1/booking",
            json={
                "merchantId": staff["merchantId"],
                "bookingMethod": "Appointment",
                "startsOn": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "staffId": staff["id"],
                "items": [{"serviceId": service["id"]}],
                "client": {
                    "firstName": "Privata",
                    "lastName": "Zephyrine",
                    "email": email,
                    "mobilePhoneNumber": phone,
                },
            },
            headers={"Booxi-Mirror-Retention": "none"},
        ) as response:
            assert response.status == 200
            answer = await response.json()
            assert answer["booking"]["client"]["email"] == email  # Booxi's answer, unchanged
        booking_id = answer["booking"]["bookingId"]
        await sim.control("POST", "/_sim/webhooks/drain")
        async with session.get(f"{app.url}/booking/v1/booking/{booking_id}") as response:
            stored = (await response.json())["booking"]
        assert stored["client"]["id"] == answer["booking"]["client"]["id"]
        assert stored["client"]["email"] == "" and stored["client"]["lastName"] == ""
    inbox = await store.rows(
        "SELECT event_type FROM inbox_event WHERE booking_id = :b OR client_id = :c",
        b=booking_id,
        c=stored["client"]["id"],
    )
    assert inbox, "its webhooks arrived and were kept, without personal data"
    held = _file_bytes(store.path)
    for value in (email, phone, "Zephyrine", "zephyrine"):
        assert value.encode() not in held
    logged = "\n".join(
        f"{r.getMessage()} {r.__dict__}"
        for r in caplog.records
        if r.name.startswith(("mirror", "api", "storage"))
    )
    assert email not in logged and phone not in logged
    await client.close()
