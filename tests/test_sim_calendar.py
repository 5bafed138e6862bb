"""GET /calendar on the simulator: Booxi's shapes, parameter rules and cursor paging."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import ALL_INCLUDES, Sim, calendar_params, rfc3339, sample

NOW = dt.datetime.now(dt.UTC)
WINDOW = (NOW - dt.timedelta(days=6), NOW + dt.timedelta(days=60))


def _expected_appointment_events(state: dict, staff_id: int, start: str, end: str) -> set:
    """(bookingId, item index) of every live appointment item overlapping the window."""
    found = set()
    for booking in state["bookings"]:
        if (
            booking["staffId"] != staff_id
            or booking["status"] == "Cancelled"
            or booking["bookingMethod"] != "Appointment"
        ):
            continue
        for index, item in enumerate(booking["items"]):
            span = item["reservedClientTimespan"]
            if span["start"] <= end and span["end"] >= start:
                found.add((booking["bookingId"], index))
    return found


async def test_calendar_paging_walks_every_event_exactly_once(sim: Sim) -> None:
    state = await sim.control("GET", "/_sim/state")
    start, end = rfc3339(WINDOW[0]), rfc3339(WINDOW[1])
    for staff in state["staff"]:
        params = calendar_params(staff["id"], *WINDOW)
        status, first = await sim.get("/calendar", params)
        assert status == 200
        assert first["cursor"], "a 66-day window of a busy staff member spans several pages"
        events = await sim.page_all("/calendar", params, "calendarEvents")
        ids = [event["id"] for event in events]
        assert len(ids) == len(set(ids))
        assert [(e["start"], e["id"]) for e in events] == sorted(
            (e["start"], e["id"]) for e in events
        )
        appointments = [e for e in events if e["type"] == "Appointment"]
        per_booking: dict[str, int] = {}
        for event in appointments:
            per_booking[event["bookingId"]] = per_booking.get(event["bookingId"], 0) + 1
        expected = _expected_appointment_events(state, staff["id"], start, end)
        assert len(appointments) == len(expected)
        assert set(per_booking) == {booking_id for booking_id, _ in expected}
        slots = {e["timeSlotId"] for e in events if e["type"] == "TimeSlot"}
        assert slots == {
            s["id"]
            for s in state["timeSlots"]
            if s["staffId"] == staff["id"] and s["start"] <= end and s["end"] >= start
        }


async def test_calendar_pages_hold_at_most_page_size_and_last_cursor_is_null(sim: Sim) -> None:
    staff_id = next(iter(sim.world.staff))
    status, body = await sim.get("/calendar", calendar_params(staff_id, *WINDOW))
    pages = 1
    while True:
        assert status == 200
        assert len(body["calendarEvents"]) <= 20
        if body["cursor"] is None:
            break
        assert len(body["calendarEvents"]) == 20
        status, body = await sim.get("/calendar", {"cursor": body["cursor"]})
        pages += 1
    assert pages > 1


async def test_calendar_multi_service_booking_gives_one_event_per_item(sim: Sim) -> None:
    reference = sample("calendar-multi-service.json")
    for staff_id in sim.world.staff:
        params = calendar_params(staff_id, *WINDOW, includes=("Appointment",))
        status, body = await sim.get("/calendar", params)
        assert status == 200
        multi = [b for b in body["bookings"] if len(b["items"]) > 1]
        if not multi:
            continue
        booking = multi[0]
        events = [e for e in body["calendarEvents"] if e.get("bookingId") == booking["bookingId"]]
        if len(events) < len(booking["items"]):  # the rest is on the next page
            continue
        assert [(e["start"], e["end"]) for e in events] == [
            (i["reservedClientTimespan"]["start"], i["reservedClientTimespan"]["end"])
            for i in booking["items"]
        ]
        # Booxi's own sample's fields, in the same order
        assert list(events[0]) == list(reference["calendarEvents"][0])
        assert _in_order(list(reference["bookings"][0]), list(booking))
        assert list(booking["items"][0]) == list(reference["bookings"][0]["items"][0])
        assert list(booking["client"]) == list(reference["bookings"][0]["client"])
        return
    pytest.fail("no multi-service booking in any first calendar page")


async def test_calendar_envelope_has_every_key_and_includes_only_what_was_asked(sim: Sim) -> None:
    staff_id = next(iter(sim.world.staff))
    status, body = await sim.get(
        "/calendar", calendar_params(staff_id, *WINDOW, includes=("None",))
    )
    assert status == 200
    assert set(body) == {
        "calendarEvents",
        "bookings",
        "groupEvents",
        "services",
        "staff",
        "timeSlots",
        "cursor",
    }
    assert body["calendarEvents"]
    assert body["bookings"] == body["groupEvents"] == body["services"] == body["timeSlots"] == []
    assert body["staff"] is None
    status, body = await sim.get("/calendar", calendar_params(staff_id, *WINDOW))
    assert body["staff"]["id"] == staff_id
    booking_ids = [b["bookingId"] for b in body["bookings"]]
    assert len(booking_ids) == len(set(booking_ids))
    referenced = {e["bookingId"] for e in body["calendarEvents"] if e["type"] == "Appointment"}
    assert referenced <= set(booking_ids)
    service_ids = [s["id"] for s in body["services"]]
    assert len(service_ids) == len(set(service_ids))
    assert {i["serviceId"] for b in body["bookings"] for i in b["items"]} <= set(service_ids)


async def test_calendar_event_type_filter(sim: Sim) -> None:
    staff_id = next(iter(sim.world.staff))
    events = await sim.page_all(
        "/calendar", calendar_params(staff_id, *WINDOW, types=("TimeSlot",)), "calendarEvents"
    )
    assert events
    assert {e["type"] for e in events} == {"TimeSlot"}
    assert all("timeSlotId" in e and "bookingId" not in e for e in events)


async def test_calendar_leaves_out_cancelled_bookings(sim: Sim) -> None:
    cancelled = {b["bookingId"] for b in sim.world.bookings.values() if b["status"] == "Cancelled"}
    for staff_id in sim.world.staff:
        events = await sim.page_all(
            "/calendar", calendar_params(staff_id, *WINDOW, includes=ALL_INCLUDES), "calendarEvents"
        )
        assert not {e.get("bookingId") for e in events} & cancelled


async def test_calendar_refuses_from_more_than_seven_days_back(sim: Sim) -> None:
    staff_id = next(iter(sim.world.staff))
    too_old = NOW - dt.timedelta(days=7, minutes=5)
    status, body = await sim.get("/calendar", calendar_params(staff_id, too_old, NOW))
    assert status == 400
    assert body["code"] == 400
    assert "7 days" in body["message"]
    status, _ = await sim.get(
        "/calendar", calendar_params(staff_id, NOW - dt.timedelta(days=6, hours=23), NOW)
    )
    assert status == 200


@pytest.mark.parametrize("missing", ["staffId", "from", "to", "eventType", "include"])
async def test_calendar_requires_each_parameter(sim: Sim, missing: str) -> None:
    params = [
        (k, v) for k, v in calendar_params(next(iter(sim.world.staff)), *WINDOW) if k != missing
    ]
    status, body = await sim.get("/calendar", params)
    assert status == 400
    assert missing in body["message"]


@pytest.mark.parametrize(
    "value", ["2026-11-22", "2026-11-22T10:00:00", "yesterday", "2026-13-01T00:00:00Z", ""]
)
async def test_calendar_rejects_dates_that_are_not_rfc3339(sim: Sim, value: str) -> None:
    params = calendar_params(next(iter(sim.world.staff)), *WINDOW)
    params = [(k, value if k == "from" else v) for k, v in params]
    status, body = await sim.get("/calendar", params)
    assert status == 400
    assert body == {"message": body["message"], "code": 400}
    assert "from" in body["message"]


async def test_calendar_accepts_offsets_and_fractions(sim: Sim) -> None:
    staff_id = next(iter(sim.world.staff))
    params = calendar_params(staff_id, *WINDOW)
    params = [(k, "2099-01-01T10:00:00.123456789+02:00" if k == "to" else v) for k, v in params]
    status, _ = await sim.get("/calendar", params)
    assert status == 200


async def test_calendar_cursor_must_come_alone(sim: Sim) -> None:
    params = calendar_params(next(iter(sim.world.staff)), *WINDOW)
    _, body = await sim.get("/calendar", params)
    status, error = await sim.get("/calendar", [("cursor", body["cursor"]), ("staffId", "1")])
    assert status == 400
    assert "alone" in error["message"]


@pytest.mark.parametrize("cursor", ["garbage", "eyJ4IjogMX0", ""])
async def test_calendar_rejects_a_bad_cursor(sim: Sim, cursor: str) -> None:
    status, body = await sim.get("/calendar", {"cursor": cursor})
    assert status == 400
    assert body["code"] == 400


async def test_calendar_unknown_staff_is_404_and_bad_enum_is_400(sim: Sim) -> None:
    status, body = await sim.get("/calendar", calendar_params(999999, *WINDOW))
    assert (status, body["code"]) == (404, 404)
    params = calendar_params(next(iter(sim.world.staff)), *WINDOW, types=("Meeting",))
    status, body = await sim.get("/calendar", params)
    assert status == 400
    assert "eventType" in body["message"]


async def test_calendar_range_is_inclusive(sim: Sim) -> None:
    staff_id = next(iter(sim.world.staff))
    events = await sim.page_all("/calendar", calendar_params(staff_id, *WINDOW), "calendarEvents")
    event = events[len(events) // 2]
    end = dt.datetime.fromisoformat(event["end"].replace("Z", "+00:00"))
    start = dt.datetime.fromisoformat(event["start"].replace("Z", "+00:00"))
    touching_end = await sim.page_all(
        "/calendar", calendar_params(staff_id, end, end + dt.timedelta(hours=1)), "calendarEvents"
    )
    assert event["id"] in {e["id"] for e in touching_end}
    touching_start = await sim.page_all(
        "/calendar",
        calendar_params(staff_id, start - dt.timedelta(hours=1), start),
        "calendarEvents",
    )
    assert event["id"] in {e["id"] for e in touching_start}


def _in_order(expected: list[str], actual: list[str]) -> bool:
    """Every expected key is there, in the same relative order."""
    positions = [actual.index(key) for key in expected if key in actual]
    return len(positions) == len(expected) and positions == sorted(positions)
