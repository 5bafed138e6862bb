"""The webhook receiver: authentication, the inbox, idempotence, ordering, malformed calls.

What is stored runs on both engines (``both_engines``); calls refused before anything is
stored run on SQLite only (the engine plays no part)."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import json
import logging
import time
from typing import Any

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import WEBHOOK_SECRET, MirrorApp, Sim, Store, sample

SIGNING = "whsec_" + base64.b64encode(b"mirror signing secret, 32 bytes.").decode()
AUTH = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}


def _event(
    event_id: str = "evt-1", *, modified: str = "2024-11-19T19:43:45Z", **changes: Any
) -> dict[str, Any]:
    event = copy.deepcopy(sample("webhook-appointment-created.json"))
    event["eventId"] = event_id
    event["content"]["booking"]["modifiedOn"] = modified
    event["content"]["booking"].update(changes)
    return event


async def _post(
    app: MirrorApp, body: Any, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            app.webhook_url,
            data=data,
            headers={"Content-Type": "application/json", **(AUTH if headers is None else headers)},
        ) as response,
    ):
        return response.status, await response.json()


async def _booking(store: Store, booking_id: str) -> dict | None:
    rows = await store.rows("SELECT raw FROM booking WHERE booking_id = :b", b=booking_id)
    return json.loads(rows[0]["raw"]) if rows else None


async def _counts(store: Store) -> dict[str, int]:
    counts = {}
    for table in ("booking", "calendar_event", "inbox_event", "module_link", "client"):
        counts[table] = (await store.rows(f"SELECT count(*) AS n FROM {table}"))[0]["n"]
    return counts


async def test_an_events_access_line_says_what_it_was_and_did(
    mirror_app: MirrorApp, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        assert (await _post(mirror_app, _event("evt-1")))[0] == 200
        assert (await _post(mirror_app, _event("evt-1")))[0] == 200
        assert (await _post(mirror_app, b"{not json"))[0] == 400
        await asyncio.sleep(0.05)  # the access line comes after the answer
    lines = [r for r in caplog.records if r.getMessage() == "http.request"]
    seen = [tuple(getattr(r, f, None) for f in ("status", "event_id", "outcome")) for r in lines]
    assert seen == [(200, "evt-1", "applied"), (200, "evt-1", "duplicate"), (400, None, None)]
    assert all(getattr(r, "event_type", None) == "appointment.created" for r in lines[:2])
    # one line per event: the receiver logs nothing else for an accepted one
    assert [r.getMessage() for r in caplog.records if r.name.startswith("api.")] == [
        "webhook.malformed"
    ]


@pytest.mark.both_engines
async def test_event_is_stored_and_applied_with_its_client_links(
    mirror_app: MirrorApp, store: Store
) -> None:
    event = _event()
    status, body = await _post(mirror_app, event)
    assert (status, body) == (200, {"eventId": "evt-1", "outcome": "applied"})
    assert await _booking(store, "A10374301") == event["content"]["booking"]
    events = await store.rows("SELECT * FROM calendar_event WHERE booking_id = 'A10374301'")
    assert len(events) == 1 and events[0]["provisional"]
    assert events[0]["starts_on"].startswith("2024-11-22T15:00:00")
    links = await store.rows("SELECT * FROM module_link")
    assert [(r["entity"], r["entity_id"], r["module_id"], r["external_id"]) for r in links] == [
        ("client", 10374296, "your_crm_module", "CUSTOMER-123")
    ]
    inbox = await store.rows("SELECT * FROM inbox_event")
    assert [(r["event_id"], r["outcome"], r["verified"], r["booking_id"]) for r in inbox] == [
        ("evt-1", "applied", "secret", "A10374301")
    ]
    assert json.loads(inbox[0]["body"]) == event
    source = await store.rows("SELECT source FROM booking")
    assert source[0]["source"] == "webhook"


@pytest.mark.both_engines
async def test_replayed_event_changes_nothing(mirror_app: MirrorApp, store: Store) -> None:
    await _post(mirror_app, _event())
    before = await store.rows("SELECT * FROM booking")
    status, body = await _post(mirror_app, _event(), method="PUT")
    assert (status, body["outcome"]) == (200, "duplicate")
    assert await store.rows("SELECT * FROM booking") == before
    inbox = await store.rows("SELECT event_id, duplicates FROM inbox_event")
    assert [(r["event_id"], r["duplicates"]) for r in inbox] == [("evt-1", 1)]


@pytest.mark.both_engines
async def test_older_event_after_newer_one_changes_nothing(
    mirror_app: MirrorApp, store: Store
) -> None:
    newer = _event("evt-new", modified="2024-11-20T10:00:00Z", status="Cancelled")
    older = _event("evt-old", modified="2024-11-19T19:43:45Z")
    assert (await _post(mirror_app, newer))[1]["outcome"] == "applied"
    assert (await _post(mirror_app, older))[1]["outcome"] == "stale"
    assert await _booking(store, "A10374301") == newer["content"]["booking"]
    assert await store.rows("SELECT id FROM calendar_event") == []  # cancelled: off the calendar
    outcomes = await store.rows("SELECT event_id, outcome FROM inbox_event ORDER BY seq")
    assert [(r["event_id"], r["outcome"]) for r in outcomes] == [
        ("evt-new", "applied"),
        ("evt-old", "stale"),
    ]


@pytest.mark.both_engines
async def test_event_content_envelope_and_unknown_types_are_accepted(
    mirror_app: MirrorApp, store: Store
) -> None:
    event = _event("evt-ec")
    event["eventContent"] = event.pop("content")
    assert (await _post(mirror_app, event))[1]["outcome"] == "applied"
    status, body = await _post(
        mirror_app,
        {"eventId": "evt-x", "eventType": "marketing.optin", "content": {"anything": [1, 2]}},
    )
    assert (status, body["outcome"]) == (200, "ignored")
    inbox = await store.rows("SELECT event_type, outcome FROM inbox_event ORDER BY seq")
    assert [tuple(r.values()) for r in inbox] == [
        ("appointment.created", "applied"),
        ("marketing.optin", "ignored"),
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": WEBHOOK_SECRET},
        {"Authorization": f"Basic {WEBHOOK_SECRET}"},
    ],
)
async def test_unauthenticated_calls_get_401_and_store_nothing(
    mirror_app: MirrorApp, store: Store, headers: dict[str, str]
) -> None:
    status, body = await _post(mirror_app, _event(), headers=headers)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert (await _counts(store))["inbox_event"] == 0


@pytest.mark.both_engines
async def test_signed_calls_are_verified_with_timestamp_tolerance(
    make_mirror_app, store: Store
) -> None:
    app = await make_mirror_app(webhook={"signing_secret": SIGNING})
    signer = Webhook(SIGNING)

    def signed(body: bytes, when: dt.datetime, event_id: str) -> dict[str, str]:
        return {
            "webhook-id": event_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signer.sign(event_id, when, body.decode()),
        }

    now = dt.datetime.now(dt.UTC)
    body = json.dumps(_event("evt-s")).encode()
    status, answer = await _post(app, body, headers=signed(body, now, "evt-s"))
    assert (status, answer["outcome"]) == (200, "applied")
    tampered = body.replace(b"Approved", b"Cancelled")
    assert (await _post(app, tampered, headers=signed(body, now, "evt-s")))[0] == 401
    old = now - dt.timedelta(minutes=10)
    body2 = json.dumps(_event("evt-t")).encode()
    assert (await _post(app, body2, headers=signed(body2, old, "evt-t")))[0] == 401
    assert (await _post(app, body2, headers={}))[0] == 401
    inbox = await store.rows("SELECT event_id, verified FROM inbox_event")
    assert [tuple(r.values()) for r in inbox] == [("evt-s", "signature")]


async def test_receiver_without_any_secret_refuses_everything(make_mirror_app, store) -> None:
    app = await make_mirror_app(webhook={})
    assert (await _post(app, _event()))[0] == 401


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1,2]",
        b'"text"',
        b"\xff\xfe",
        {"eventType": "appointment.created", "content": {}},
        {"eventId": "", "eventType": "appointment.created"},
        {"eventId": "e", "eventType": 5},
        {"eventId": "e", "eventType": "appointment.created", "content": []},
        {"eventId": "e", "eventType": "appointment.created", "content": {}},
        {"eventId": "e", "eventType": "appointment.created", "content": {"booking": {"x": 1}}},
        {
            "eventId": "e",
            "eventType": "appointment.updated",
            "content": {"booking": {**_event()["content"]["booking"], "modifiedOn": "yesterday"}},
        },
        {
            "eventId": "e",
            "eventType": "appointment.updated",
            "content": {"booking": {**_event()["content"]["booking"], "merchantId": "34497"}},
        },
        {
            "eventId": "e",
            "eventType": "appointment.updated",
            "content": {**_event()["content"], "clientLinks": [{"clientId": 1}]},
        },
    ],
)
async def test_malformed_bodies_get_400_and_change_nothing(
    mirror_app: MirrorApp, store: Store, body: Any
) -> None:
    await _post(mirror_app, _event("evt-before"))
    before = await _counts(store)
    status, answer = await _post(mirror_app, body)
    assert status == 400
    assert answer["error"]["code"] == "bad_request"
    assert "Traceback" not in answer["error"]["message"]
    assert await _counts(store) == before


async def test_oversized_body_is_413(mirror_app: MirrorApp, store: Store) -> None:
    import io

    huge = io.BytesIO(b'{"eventId": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    async with (
        aiohttp.ClientSession() as session,
        session.post(mirror_app.webhook_url, data=huge, headers=AUTH) as response,
    ):
        assert response.status == 413
        assert (await response.json())["error"]["status"] == 413


@pytest.mark.both_engines
async def test_client_events_update_and_remove_clients(mirror_app: MirrorApp, store: Store) -> None:
    client = {
        "id": 77,
        "merchantId": 1,
        "firstName": "Ada",
        "lastName": "Byron",
        "email": "Ada@Example.org",
        "modifiedOn": "2024-01-01T00:00:00Z",
    }
    link = {
        "clientId": 77,
        "moduleId": "crm",
        "externalId": "C-77",
        "modifiedOn": "2024-01-01T00:00:00Z",
    }
    status, body = await _post(
        mirror_app,
        {
            "eventId": "c1",
            "eventType": "client.updated",
            "content": {"client": client, "clientLinks": [link]},
        },
    )
    assert (status, body["outcome"]) == (200, "applied")
    rows = await store.rows("SELECT id, email, last_name FROM client")
    assert [tuple(r.values()) for r in rows] == [(77, "ada@example.org", "byron")]
    status, body = await _post(
        mirror_app,
        {"eventId": "c2", "eventType": "client.deleted", "content": {"client": {"id": 77}}},
    )
    assert (status, body["outcome"]) == (200, "applied")
    assert await store.rows("SELECT id FROM client") == []
    assert await store.rows("SELECT entity_id FROM module_link") == []


@pytest.mark.both_engines
async def test_webhooks_alone_bring_new_updated_and_cancelled_bookings_without_a_poll(
    make_sim, mirror_app: MirrorApp, store: Store
) -> None:
    sim: Sim = await make_sim(webhook_urls=(mirror_app.webhook_url,), webhook_secret=WEBHOOK_SECRET)
    staff = next(iter(sim.world.staff.values()))
    service = next(
        s
        for s in sim.world.services.values()
        if s["merchantId"] == staff["merchantId"] and s["bookingMethod"] == "Appointment"
    )
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    while sim.world.conflict_for(
        staff["id"],
        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ):
        start += dt.timedelta(minutes=30)

    async def visible(check) -> float:
        began = time.monotonic()  # a bound for behaviour; bench.webhook_ingest measures speed
        while time.monotonic() - began < 10.0:
            if check(await _booking(store, booking_id)):
                return time.monotonic() - began
            await asyncio.sleep(0.01)
        raise AssertionError("not visible within 10 s")

    status, created = await sim.call(
        "POST",
        "/booking",
        json_body={
            "merchantId": staff["merchantId"],
            "bookingMethod": "Appointment",
            "startsOn": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "staffId": staff["id"],
            "items": [{"serviceId": service["id"]}],
            "client": {"id": next(iter(sim.world.clients))},
        },
    )
    assert status == 200
    booking_id = created["booking"]["bookingId"]
    await visible(lambda b: b == created["booking"])
    status, updated = await sim.call(
        "PUT", f"/booking/{booking_id}", json_body={"quickNote": "bring samples"}
    )
    await visible(lambda b: b == updated["booking"])
    status, cancelled = await sim.call(
        "PUT", f"/booking/{booking_id}", json_body={"status": "Cancelled"}
    )
    await visible(lambda b: b == cancelled["booking"])
    events = await store.rows("SELECT id FROM calendar_event WHERE booking_id = :b", b=booking_id)
    assert events == []
