"""Webhook delivery from the simulator: shape, authentication, retries and faults."""

from __future__ import annotations

import asyncio
import base64
import time

from standardwebhooks.webhooks import Webhook

from tests.conftest import Receiver, Sim

SECRET = "shared-webhook-secret"
SIGNING = "whsec_" + base64.b64encode(b"a signing secret of 32 bytes....").decode()


async def _sim_with_hook(make_sim, receiver: Receiver, **extra) -> Sim:
    return await make_sim(
        webhook_urls=(receiver.url,), webhook_secret=SECRET, signing_secret=SIGNING, **extra
    )


def _future_booking(sim: Sim) -> dict:
    import datetime as dt

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return next(
        b
        for b in sim.world.bookings.values()
        if b["bookingMethod"] == "Appointment" and b["startsOn"] > now and b["status"] == "Approved"
    )


async def test_a_change_is_delivered_signed_with_the_booking_and_client_links(
    make_sim, receiver: Receiver
) -> None:
    sim = await _sim_with_hook(make_sim, receiver)
    booking = _future_booking(sim)
    status, body = await sim.call(
        "PUT", f"/booking/{booking['bookingId']}", json_body={"quickNote": "call before"}
    )
    assert status == 200
    await receiver.wait_for(1)
    headers, raw = receiver.calls[0]
    event = receiver.events()[0]
    assert set(event) == {"eventId", "eventType", "createdOn", "content"}
    assert event["eventType"] == "appointment.updated"
    assert event["content"]["booking"] == body["booking"]
    client_id = body["booking"]["client"]["id"]
    assert event["content"]["clientLinks"] == sim.world.links_of(client_id)
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["webhook-id"] == event["eventId"]
    assert Webhook(SIGNING).verify(raw, headers) == event  # raises if the signature is wrong
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 30


async def test_created_and_reservation_event_types(make_sim, receiver: Receiver) -> None:
    sim = await _sim_with_hook(make_sim, receiver)
    changed = (await sim.control("POST", "/_sim/mutate", {"count": 40, "seed": 5}))["changed"]
    await sim.control("POST", "/_sim/webhooks/drain")
    types = {e["eventType"] for e in receiver.events()}
    assert {"appointment.created", "appointment.updated"} <= types
    assert types <= {
        "appointment.created",
        "appointment.updated",
        "reservation.created",
        "reservation.updated",
    }
    assert {e["content"]["booking"]["bookingId"] for e in receiver.events()} == set(changed)


async def test_failed_deliveries_are_retried_with_backoff(make_sim, receiver: Receiver) -> None:
    sim = await _sim_with_hook(make_sim, receiver)
    receiver.fail_next = 2
    booking = _future_booking(sim)
    started = time.monotonic()
    await sim.call("PUT", f"/booking/{booking['bookingId']}", json_body={"quickNote": "x"})
    await receiver.wait_for(1)
    assert time.monotonic() - started >= 0.5 * 0.8 + 1.0 * 0.8  # two waits: ~0.5 s, ~1 s
    log = (await sim.control("GET", "/_sim/webhooks"))["deliveries"]
    assert [(d["attempt"], d["outcome"]) for d in log] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "delivered"),
    ]
    assert [d["status"] for d in log] == [500, 500, 204]


async def test_unreachable_receiver_is_retried_then_given_up(make_sim) -> None:
    sim = await make_sim(webhook_urls=("http://127.0.0.1:9/hook",))
    import simulator.webhooks as webhooks

    original = webhooks.FIRST_RETRY_S
    webhooks.FIRST_RETRY_S = 0.01  # keep the test short; the schedule is the same
    try:
        await sim.call(
            "PUT", f"/booking/{_future_booking(sim)['bookingId']}", json_body={"quickNote": "y"}
        )
        drained = await sim.control("POST", "/_sim/webhooks/drain")
    finally:
        webhooks.FIRST_RETRY_S = original
    assert drained == {"drained": True, "pending": 0}
    stats = (await sim.control("GET", "/_sim/webhooks"))["stats"]
    assert stats["gave_up"] == 1
    assert stats["failed_attempts"] == webhooks.MAX_ATTEMPTS


async def test_drop_fault_loses_events(make_sim, receiver: Receiver) -> None:
    sim = await _sim_with_hook(make_sim, receiver)
    await sim.control("POST", "/_sim/faults", {"webhook_drop_rate": 1})
    await sim.control("POST", "/_sim/mutate", {"count": 10, "seed": 1})
    await sim.control("POST", "/_sim/webhooks/drain")
    assert receiver.calls == []
    stats = (await sim.control("GET", "/_sim/webhooks"))["stats"]
    assert stats["dropped"] == stats["published"] >= 10


async def test_duplicate_fault_sends_the_same_event_twice(make_sim, receiver: Receiver) -> None:
    sim = await _sim_with_hook(make_sim, receiver)
    await sim.control("POST", "/_sim/faults", {"webhook_duplicate_rate": 1})
    await sim.call(
        "PUT", f"/booking/{_future_booking(sim)['bookingId']}", json_body={"quickNote": "dup"}
    )
    await receiver.wait_for(2)
    first, second = receiver.calls
    assert first[1] == second[1]
    assert first[0]["webhook-id"] == second[0]["webhook-id"]


async def test_reorder_fault_shuffles_delivery_order(make_sim, receiver: Receiver) -> None:
    sim = await _sim_with_hook(make_sim, receiver)
    await sim.control("POST", "/_sim/faults", {"webhook_reorder": True})
    bookings = [b for b in sim.world.bookings.values() if b["status"] != "Cancelled"][:30]
    for index, booking in enumerate(bookings):
        await sim.call(
            "PUT",
            f"/booking/{booking['bookingId']}",
            json_body={"quickNote": f"note {index}"}
            if booking["bookingMethod"] == "Appointment"
            else {"isCompleted": not booking["isCompleted"]},
        )
    await sim.control("POST", "/_sim/webhooks/drain")
    received = [e["content"]["booking"]["bookingId"] for e in receiver.events()]
    sent = [b["bookingId"] for b in bookings]
    assert sorted(received) == sorted(sent)
    assert received != sent


async def test_delay_fault_holds_deliveries_back(make_sim, receiver: Receiver) -> None:
    sim = await _sim_with_hook(make_sim, receiver)
    await sim.control("POST", "/_sim/faults", {"webhook_delay_ms": 400})
    started = time.monotonic()
    await sim.call(
        "PUT", f"/booking/{_future_booking(sim)['bookingId']}", json_body={"quickNote": "later"}
    )
    await asyncio.sleep(0.2)
    assert receiver.calls == []
    await receiver.wait_for(1)
    assert time.monotonic() - started >= 0.39


async def test_client_events_carry_no_personal_data_on_deletion(
    make_sim, receiver: Receiver
) -> None:
    sim = await _sim_with_hook(make_sim, receiver)
    merchant = next(iter(sim.world.merchants))
    status, body = await sim.call(
        "POST",
        "/client",
        json_body={
            "merchantId": merchant,
            "firstName": "Temp",
            "lastName": "Person",
            "email": "temp.person@example.org",
        },
    )
    client_id = body["client"]["id"]
    await sim.call("DELETE", f"/client/{client_id}")
    await sim.control("POST", "/_sim/webhooks/drain")
    events = receiver.events()
    assert [e["eventType"] for e in events] == ["client.created", "client.deleted"]
    assert events[1]["content"]["client"] == {"id": client_id, "merchantId": merchant}
