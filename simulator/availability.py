"""Live availability: ``GET /service/{id}/availability`` and ``POST /availability/search``.

Choices: staff take appointments 09:00 to 18:00 local time, Monday to Saturday,
starting every 30 minutes (``GET``) or 15 minutes (``POST``); a start is offered when
the whole service time is free and not in the past. A group service offers its
future group events that have places left. A range may span at most 31 days (400
otherwise); ``GET`` is cursor-paged by start then staff id.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from simulator.answers import answer
from simulator.body import Fields, read_json_object
from simulator.errors import bad_request, not_found
from simulator.keys import DIALECTS, SETTINGS, WORLD
from simulator.paging import decode_cursor, encode_cursor, keyset_page
from simulator.params import Query, path_id
from simulator.timeutil import fmt, parse_rfc3339
from simulator.world import Json, World

MAX_SPAN = dt.timedelta(days=31)
OPENS, CLOSES = dt.time(9), dt.time(18)


def free_starts(
    world: World, staff: Json, start: dt.datetime, end: dt.datetime, minutes: int, step: int
) -> list[dt.datetime]:
    """Starts in ``[start, end]`` at which ``staff`` is free for ``minutes``."""
    zone = ZoneInfo(world.merchants[staff["merchantId"]]["timeZone"])
    now = world.clock()
    found = []
    day = start.astimezone(zone).date()
    while day <= end.astimezone(zone).date():
        if day.weekday() != 6:
            moment = dt.datetime.combine(day, OPENS, zone).astimezone(dt.UTC)
            closes = dt.datetime.combine(day, CLOSES, zone).astimezone(dt.UTC)
            while moment + dt.timedelta(minutes=minutes) <= closes:
                finish = moment + dt.timedelta(minutes=minutes)
                if (
                    start <= moment <= end
                    and moment >= now
                    and world.conflict_for(staff["id"], fmt(moment), fmt(finish)) is None
                ):
                    found.append(moment)
                moment += dt.timedelta(minutes=step)
        day += dt.timedelta(days=1)
    return found


def _check_span(start: dt.datetime, end: dt.datetime) -> None:
    if end < start:
        raise bad_request("to must not be before from")
    if end - start > MAX_SPAN:
        raise bad_request("the range may span at most 31 days")


async def service_availability(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    service_id = path_id("serviceId", request.match_info["serviceId"])
    service = world.services.get(service_id)
    if service is None:
        raise not_found("Service", service_id)
    query = Query(request.query)
    after: list[object] | None = None
    if query.has_cursor():
        saved, after = decode_cursor(f"availability:{service['id']}", query.cursor_only())
        try:
            start, end = parse_rfc3339(saved["from"]), parse_rfc3339(saved["to"])
            staff_id = saved["staffId"]
        except (KeyError, TypeError, ValueError):
            raise bad_request("cursor is not valid for this endpoint") from None
    else:
        start, end = query.required_time("from"), query.required_time("to")
        staff_id = query.integer("staffId")
        query.text("language")
        _check_span(start, end)
        if (
            staff_id is not None
            and world.staff.get(staff_id, {}).get("merchantId") != service["merchantId"]
        ):
            raise not_found("Staff", staff_id)
    slots = _service_slots(world, service, start, end, staff_id)
    size = request.app[DIALECTS].page_size(request.app[SETTINGS].page_size)
    page, last = keyset_page(slots, lambda s: [s["start"], s["staffId"]], after, size)
    saved = {"from": fmt(start), "to": fmt(end), "staffId": staff_id}
    return answer(
        request,
        {
            "staffSelectionMode": service["staffSelectionMode"],
            "timeSelectionMode": service["timeSelectionMode"],
            "serviceAvailability": page,
            "cursor": encode_cursor(f"availability:{service['id']}", saved, last) if last else None,
        },
    )


def _service_slots(
    world: World, service: Json, start: dt.datetime, end: dt.datetime, staff_id: int | None
) -> list[Json]:
    base = {
        "serviceId": service["id"],
        "timeSelectionMode": service["timeSelectionMode"],
        "duration": service["duration"],
        "price": service["price"],
        "locationText": service["locationText"],
        "metadata": {},
    }
    slots: list[Json] = []
    if service["bookingMethod"] == "GroupReservation":
        now = fmt(world.clock())
        for event in world.group_events.values():
            places = event["attendeeCapacity"] - event["attendeeCount"]
            if (
                event["serviceId"] == service["id"]
                and places > 0
                and event["start"] >= now
                and fmt(start) <= event["start"] <= fmt(end)
                and staff_id in (None, event["staffId"])
            ):
                finish = parse_rfc3339(event["start"]) + dt.timedelta(minutes=event["duration"])
                slots.append(
                    {
                        "start": event["start"],
                        "end": fmt(finish),
                        **base,
                        "staffId": event["staffId"],
                        "groupEventId": event["id"],
                        "capacity": event["attendeeCapacity"],
                        "placesLeft": places,
                    }
                )
    else:
        for staff in world.staff.values():
            if staff["merchantId"] != service["merchantId"] or staff_id not in (None, staff["id"]):
                continue
            for moment in free_starts(world, staff, start, end, service["duration"], 30):
                finish = moment + dt.timedelta(minutes=service["duration"])
                slots.append(
                    {
                        "start": fmt(moment),
                        "end": fmt(finish),
                        **base,
                        "staffId": staff["id"],
                        "groupEventId": None,
                        "capacity": 1,
                        "placesLeft": 1,
                    }
                )
    slots.sort(key=lambda s: (s["start"], s["staffId"]))
    return slots


async def search_availability(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    body = Fields(await read_json_object(request))
    body.choice("searchMode", ("verbose",))
    merchant_id = body.req_integer("merchantId")
    if merchant_id not in world.merchants:
        raise not_found("Merchant", merchant_id)
    span = body.obj("range", required=True)
    assert span is not None
    start, end = span.time("startsOn", required=True), span.time("endsOn", required=True)
    assert start is not None and end is not None
    _check_span(start, end)
    services = []
    for item in body.objects("bookingItems", required=True) or []:
        service = world.services.get(item.req_integer("serviceId"))
        if (
            service is None
            or service["merchantId"] != merchant_id
            or (service["bookingMethod"] != "Appointment")
        ):
            raise bad_request(
                f"{item.where}.serviceId is not an appointment service of merchant {merchant_id}"
            )
        services.append(service)
    only = body.data.get("onlyIncludeStaffs")
    if only is not None and (
        not isinstance(only, list)
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in only)
    ):
        raise bad_request("onlyIncludeStaffs must be a list of staff ids")
    minutes = sum(s["duration"] for s in services)
    by_start: dict[dt.datetime, list[int]] = {}
    for staff in world.staff.values():
        if staff["merchantId"] != merchant_id or (only is not None and staff["id"] not in only):
            continue
        for moment in free_starts(world, staff, start, end, minutes, 15):
            by_start.setdefault(moment, []).append(staff["id"])
    items = [
        {
            "serviceId": s["id"],
            "duration": s["duration"],
            "spacingAfter": 0,
            "isBusySpacingAfter": True,
        }
        for s in services
    ]
    return answer(
        request,
        {
            "availability": {
                "timeSelectionMode": "TimeSlot",
                "bookingTimeSlots": [
                    {
                        "startsOn": fmt(moment),
                        "staffSelectionMode": "AssignedStaff",
                        "staffIds": sorted(ids),
                        "items": items,
                    }
                    for moment, ids in sorted(by_start.items())
                ],
            }
        },
    )
