"""``GET /calendar``: one staff member's events over an inclusive range, cursor-paged.

Booxi refuses a ``from`` more than 7 days in the past (400). **choices**: no maximum
span; ``to`` before ``from`` is a 400; an unknown ``staffId`` is a 404; a follow-up
page is not checked against the 7-day rule again. The envelope always carries every
key: ``calendarEvents``, ``bookings``, ``groupEvents``, ``services``, ``staff`` (the
staff object, or null without ``include=Staff``), ``timeSlots`` and ``cursor``.
With ``include=GroupEvent`` a group event comes with its (non-cancelled)
reservations in ``bookings``: a staff calendar shows who attends a class.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from simulator.answers import answer
from simulator.errors import bad_request, not_found
from simulator.includes import services_of, unique_by
from simulator.keys import DIALECTS, SETTINGS, WORLD
from simulator.paging import decode_cursor, encode_cursor, keyset_page
from simulator.params import Query
from simulator.timeutil import fmt, parse_rfc3339, utcnow
from simulator.world import EVENT_TYPES, INCLUDES, Json

PAST_LIMIT = dt.timedelta(days=7)


async def get_calendar(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    query = Query(request.query)
    after: list[object] | None = None
    if query.has_cursor():
        saved, after = decode_cursor("calendar", query.cursor_only())
        try:
            staff_id = int(saved["staffId"])
            start, end = parse_rfc3339(saved["from"]), parse_rfc3339(saved["to"])
            types, includes = list(saved["eventType"]), list(saved["include"])
        except (KeyError, TypeError, ValueError):
            raise bad_request("cursor is not valid for this endpoint") from None
    else:
        staff_id = query.required_integer("staffId")
        start, end = query.required_time("from"), query.required_time("to")
        types = query.choices("eventType", EVENT_TYPES, required=True)
        includes = query.choices("include", INCLUDES, required=True)
        query.text("language")
        if end < start:
            raise bad_request("to must not be before from")
        earliest = utcnow().replace(microsecond=0) - PAST_LIMIT
        if start < earliest:
            raise bad_request(
                f"from may not be more than 7 days in the past (earliest now: {fmt(earliest)})"
            )
    staff = world.staff.get(staff_id)
    if staff is None:
        raise not_found("Staff", staff_id)
    events = world.calendar_events(staff_id, start, end, set(types))
    size = request.app[DIALECTS].page_size(request.app[SETTINGS].page_size)
    page, last = keyset_page(events, lambda e: [e["start"], e["id"]], after, size)
    cursor = None
    if last is not None:
        saved_query = {
            "staffId": staff_id,
            "from": fmt(start),
            "to": fmt(end),
            "eventType": types,
            "include": includes,
        }
        cursor = encode_cursor("calendar", saved_query, last)
    return answer(request, _envelope(request, page, staff, includes, cursor), null_lists=True)


def _envelope(
    request: web.Request, page: list[Json], staff: Json, includes: list[str], cursor: str | None
) -> Json:
    world = request.app[WORLD]
    bookings: list[Json] = []
    group_events: list[Json] = []
    time_slots: list[Json] = []
    for event in page:
        if event["type"] == "Appointment" and "Appointment" in includes:
            bookings.append(world.bookings[event["bookingId"]])
        elif event["type"] == "GroupEvent" and "GroupEvent" in includes:
            group_events.append(world.group_events[event["groupEventId"]])
            bookings.extend(world.reservations_of(event["groupEventId"]))
        elif event["type"] == "TimeSlot" and "TimeSlot" in includes:
            time_slots.append(world.time_slots[event["timeSlotId"]])
    bookings = unique_by(bookings, "bookingId")
    group_events = unique_by(group_events, "id")
    return {
        "calendarEvents": page,
        "bookings": bookings,
        "groupEvents": group_events,
        "services": services_of(world, bookings, group_events) if "Service" in includes else [],
        "staff": staff if "Staff" in includes else None,
        "timeSlots": unique_by(time_slots, "id"),
        "cursor": cursor,
    }
