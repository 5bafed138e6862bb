"""/booking on the simulator: client history, one booking, create, update, conflicts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import Sim, calendar_params, rfc3339

NOW = dt.datetime.now(dt.UTC)


def _client_with_most_bookings(sim: Sim) -> int:
    counts: dict[int, int] = {}
    for booking in sim.world.bookings.values():
        counts[booking["client"]["id"]] = counts.get(booking["client"]["id"], 0) + 1
    return max(counts, key=lambda c: counts[c])


def _free_start(sim: Sim, staff_id: int, minutes: int) -> dt.datetime:
    """A start in the next days when the staff member is free (by the simulator's truth)."""
    start = (NOW + dt.timedelta(days=3)).replace(hour=3, minute=0, second=0, microsecond=0)
    for step in range(0, 24 * 14 * 2):
        moment = start + dt.timedelta(minutes=30 * step)
        end = moment + dt.timedelta(minutes=minutes)
        if sim.world.conflict_for(staff_id, rfc3339(moment), rfc3339(end)) is None:
            return moment
    raise AssertionError("no free time")


def _appointment_service(sim: Sim, merchant_id: int) -> dict[str, Any]:
    return next(
        s
        for s in sim.world.services.values()
        if s["merchantId"] == merchant_id and s["bookingMethod"] == "Appointment"
    )


async def _new_booking(sim: Sim, **overrides: Any) -> dict[str, Any]:
    staff = next(iter(sim.world.staff.values()))
    service = _appointment_service(sim, staff["merchantId"])
    client = next(c for c in sim.world.clients.values() if c["merchantId"] == staff["merchantId"])
    body = {
        "merchantId": staff["merchantId"],
        "bookingMethod": "Appointment",
        "startsOn": rfc3339(_free_start(sim, staff["id"], service["duration"])),
        "staffId": staff["id"],
        "items": [{"serviceId": service["id"]}],
        "client": {"id": client["id"]},
        **overrides,
    }
    status, created = await sim.call("POST", "/booking", json_body=body)
    assert status == 200, created
    return created["booking"]


async def test_history_paging_walks_every_booking_of_the_client_once(sim: Sim) -> None:
    client_id = _client_with_most_bookings(sim)
    expected = sorted(
        (b["startsOn"], b["bookingId"])
        for b in sim.world.bookings.values()
        if b["client"]["id"] == client_id
    )
    assert len(expected) > 20, "needs more than one page"
    bookings = await sim.page_all("/booking", {"clientId": client_id}, "bookings")
    assert [(b["startsOn"], b["bookingId"]) for b in bookings] == expected
    descending = await sim.page_all(
        "/booking", {"clientId": client_id, "order": "Descending"}, "bookings"
    )
    assert [(b["startsOn"], b["bookingId"]) for b in descending] == expected[::-1]


async def test_history_filters_and_includes(sim: Sim) -> None:
    client_id = _client_with_most_bookings(sim)
    start, end = NOW - dt.timedelta(days=10), NOW + dt.timedelta(days=10)
    params = [
        ("clientId", client_id),
        ("from", rfc3339(start)),
        ("to", rfc3339(end)),
        ("bookingMethod", "Appointment"),
    ]
    status, body = await sim.get("/booking", params)
    assert status == 200
    assert set(body) == {
        "bookings",
        "groupEvents",
        "services",
        "staff",
        "merchants",
        "resources",
        "cursor",
    }
    expected = {
        b["bookingId"]
        for b in sim.world.bookings.values()
        if b["client"]["id"] == client_id
        and b["bookingMethod"] == "Appointment"
        and rfc3339(start) <= b["startsOn"] <= rfc3339(end)
    }
    got = await sim.page_all("/booking", params, "bookings")
    assert {b["bookingId"] for b in got} == expected
    if body["bookings"]:
        assert {s["id"] for s in body["staff"]} == {b["staffId"] for b in body["bookings"]}
        assert {m["id"] for m in body["merchants"]} == {b["merchantId"] for b in body["bookings"]}


async def test_history_requires_a_known_client(sim: Sim) -> None:
    status, body = await sim.get("/booking", {})
    assert status == 400 and "clientId" in body["message"]
    status, body = await sim.get("/booking", {"clientId": "987654321"})
    assert status == 404
    status, body = await sim.get("/booking", {"clientId": "1", "order": "Sideways"})
    assert status == 400 and "order" in body["message"]


async def test_get_booking_answers_booking_and_its_group_event(sim: Sim) -> None:
    reservation = next(
        b for b in sim.world.bookings.values() if b["bookingMethod"] == "GroupReservation"
    )
    status, body = await sim.get(f"/booking/{reservation['bookingId']}")
    assert status == 200
    assert body["booking"] == reservation
    assert [g["id"] for g in body["groupEvents"]] == [reservation["groupEventId"]]
    status, body = await sim.get("/booking/A0")
    assert (status, body["code"]) == (404, 404)


async def test_create_booking_is_readable_at_once_everywhere(sim: Sim) -> None:
    booking = await _new_booking(sim, quickNote="first visit")
    assert booking["status"] == "Approved"
    assert booking["client"]["presence"] == "Expecting"
    assert booking["createdOn"] == booking["modifiedOn"]
    status, body = await sim.get(f"/booking/{booking['bookingId']}")
    assert status == 200 and body["booking"] == booking
    start = dt.datetime.fromisoformat(booking["startsOn"].replace("Z", "+00:00"))
    events = await sim.page_all(
        "/calendar",
        calendar_params(booking["staffId"], start - dt.timedelta(hours=1), start),
        "calendarEvents",
    )
    assert booking["bookingId"] in {e.get("bookingId") for e in events}


async def test_create_booking_without_client_id_matches_or_creates_the_client(sim: Sim) -> None:
    staff = next(iter(sim.world.staff.values()))
    known = next(c for c in sim.world.clients.values() if c["merchantId"] == staff["merchantId"])
    matched = await _new_booking(
        sim,
        client={
            "firstName": known["firstName"].upper(),
            "lastName": known["lastName"],
            "email": known["email"],
        },
    )
    assert matched["client"]["id"] == known["id"]
    before = len(sim.world.clients)
    created = await _new_booking(
        sim,
        client={
            "firstName": "Nova",
            "lastName": "Quinn",
            "email": "nova.quinn@example.org",
            "moduleId": "crm",
            "externalId": "NEW-1",
        },
    )
    assert created["client"]["id"] not in {known["id"]}
    assert len(sim.world.clients) == before + 1
    status, found = await sim.get("/client", {"moduleId": "crm", "externalId": "NEW-1"})
    assert status == 200
    assert [c["id"] for c in found["clients"]] == [created["client"]["id"]]
    status, error = await sim.call(
        "POST",
        "/booking",
        json_body={
            "merchantId": staff["merchantId"],
            "bookingMethod": "Appointment",
            "startsOn": rfc3339(NOW + dt.timedelta(days=2)),
            "staffId": staff["id"],
            "items": [{"serviceId": _appointment_service(sim, staff["merchantId"])["id"]}],
            "client": {"firstName": "No", "lastName": "Contact"},
        },
    )
    assert status == 400 and "client" in error["message"]


async def test_double_booking_a_staff_member_is_a_409_conflict(sim: Sim) -> None:
    booking = await _new_booking(sim)
    status, body = await sim.call(
        "POST",
        "/booking",
        json_body={
            "merchantId": booking["merchantId"],
            "bookingMethod": "Appointment",
            "startsOn": booking["startsOn"],
            "staffId": booking["staffId"],
            "items": [{"serviceId": booking["items"][0]["serviceId"]}],
            "client": {"id": booking["client"]["id"]},
        },
    )
    assert status == 409
    assert body == {"message": body["message"], "code": 409, "error": "BookingConflict"}


async def test_reschedule_and_cancel_change_calendar_and_modified_on(sim: Sim) -> None:
    booking = await _new_booking(sim)
    new_start = _free_start(sim, booking["staffId"], booking["totalClientTimespan"]["duration"])
    status, body = await sim.call(
        "PUT", f"/booking/{booking['bookingId']}", json_body={"startsOn": rfc3339(new_start)}
    )
    assert status == 200
    moved = body["booking"]
    assert moved["startsOn"] == rfc3339(new_start)
    assert moved["items"][0]["reservedClientTimespan"]["start"] == rfc3339(new_start)
    assert moved["modifiedOn"] > booking["modifiedOn"]
    status, body = await sim.call(
        "PUT", f"/booking/{booking['bookingId']}", json_body={"status": "Cancelled"}
    )
    assert status == 200
    cancelled = body["booking"]
    assert cancelled["status"] == "Cancelled"
    assert cancelled["modifiedOn"] > moved["modifiedOn"]
    events = await sim.page_all(
        "/calendar",
        calendar_params(booking["staffId"], new_start - dt.timedelta(hours=1), new_start),
        "calendarEvents",
    )
    assert booking["bookingId"] not in {e.get("bookingId") for e in events}
    status, body = await sim.get(f"/booking/{booking['bookingId']}")
    assert body["booking"]["status"] == "Cancelled"


async def test_reassign_to_a_colleague_moves_the_booking(sim: Sim) -> None:
    booking = await _new_booking(sim)
    colleague = next(
        s
        for s in sim.world.staff.values()
        if s["merchantId"] == booking["merchantId"] and s["id"] != booking["staffId"]
    )
    span = booking["totalClientTimespan"]
    if sim.world.conflict_for(colleague["id"], span["start"], span["end"]) is not None:
        pytest.skip("colleague busy at that time in this seed")
    status, body = await sim.call(
        "PUT", f"/booking/{booking['bookingId']}", json_body={"staffId": colleague["id"]}
    )
    assert status == 200
    assert body["booking"]["staffId"] == colleague["id"]
    assert body["booking"]["staffFirstName"] == colleague["firstName"]


async def test_presence_and_completion_update(sim: Sim) -> None:
    booking = await _new_booking(sim)
    status, body = await sim.call(
        "PUT",
        f"/booking/{booking['bookingId']}",
        json_body={
            "client": {"presence": "Arrived"},
            "isCompleted": True,
            "modifiedBy": "Staff",
            "modifiedByStaffId": booking["staffId"],
        },
    )
    assert status == 200
    assert body["booking"]["client"]["presence"] == "Arrived"
    assert body["booking"]["isCompleted"] is True
    assert body["booking"]["modifiedByStaffId"] == booking["staffId"]


async def test_unchanged_put_keeps_modified_on(sim: Sim) -> None:
    booking = await _new_booking(sim)
    status, body = await sim.call(
        "PUT", f"/booking/{booking['bookingId']}", json_body={"status": "Approved"}
    )
    assert status == 200
    assert body["booking"]["modifiedOn"] == booking["modifiedOn"]


async def test_group_reservation_takes_status_but_not_a_reschedule(sim: Sim) -> None:
    reservation = next(
        b
        for b in sim.world.bookings.values()
        if b["bookingMethod"] == "GroupReservation" and b["status"] == "Approved"
    )
    status, body = await sim.call(
        "PUT", f"/booking/{reservation['bookingId']}", json_body={"startsOn": rfc3339(NOW)}
    )
    assert status == 400
    event = sim.world.group_events[reservation["groupEventId"]]
    count = event["attendeeCount"]
    status, body = await sim.call(
        "PUT", f"/booking/{reservation['bookingId']}", json_body={"status": "Cancelled"}
    )
    assert status == 200
    assert event["attendeeCount"] == count - 1


@pytest.mark.parametrize(
    ("change", "status", "word"),
    [
        ({"status": "PendingStaffApproval"}, 400, "status"),
        ({"items": []}, 400, "items"),
        ({"items": [{"serviceId": "x"}]}, 400, "serviceId"),
        ({"items": [{"serviceId": 1}]}, 404, "Service"),
        ({"staffId": 1}, 404, "Staff"),
        ({"startsOn": "tomorrow"}, 400, "startsOn"),
        ({"merchantId": None}, 400, "merchantId"),
        ({"bookingMethod": "Walk-in"}, 400, "bookingMethod"),
        ({"client": "someone"}, 400, "client"),
        ({"client": {"id": 1}}, 404, "Client"),
    ],
)
async def test_create_booking_validates_its_body(
    sim: Sim, change: dict[str, Any], status: int, word: str
) -> None:
    staff = next(iter(sim.world.staff.values()))
    body = {
        "merchantId": staff["merchantId"],
        "bookingMethod": "Appointment",
        "startsOn": rfc3339(_free_start(sim, staff["id"], 60)),
        "staffId": staff["id"],
        "items": [{"serviceId": _appointment_service(sim, staff["merchantId"])["id"]}],
        "client": {"id": next(iter(sim.world.clients))},
        **change,
    }
    before = len(sim.world.bookings)
    got, error = await sim.call("POST", "/booking", json_body=body)
    assert got == status
    assert word in error["message"]
    assert len(sim.world.bookings) == before
