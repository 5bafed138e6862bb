"""``/booking``: a client's history (cursor-paged), one booking, create and update.

History choices: ``clientId`` or ``merchantId`` is required: a client's history, or
(``merchantId`` alone) every booking of a store, including the requests no staff member
has taken, which are on no calendar (the ``booking-list-client-only`` dialect refuses
that listing, 400); an unknown client or store is a 404; ``from``/``to`` are optional
and filter ``startsOn`` inclusively; cancelled bookings are included; ``order`` sorts by
``startsOn`` then ``bookingId`` (``Ascending`` by default). The envelope always carries
``bookings``, ``groupEvents``, ``services``, ``staff`` (**choice**: a list, since a
history spans several staff members), ``merchants``, ``resources`` (always empty: the
simulator has no resources) and ``cursor``. The ``history-range-required`` dialect makes ``from``
and ``to`` required, at most 366 days apart (see ``simulator.dialects``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from aiohttp import web

from simulator import operations
from simulator.answers import answer
from simulator.body import read_json_object
from simulator.dialects import (
    BOOKING_LIST_CLIENT_ONLY,
    HISTORY_MAX_DAYS,
    HISTORY_RANGE_REQUIRED,
    LISTS_NULL,
    WRITE_BARE,
)
from simulator.errors import bad_request, not_found
from simulator.includes import group_events_of, services_of
from simulator.keys import DIALECTS, SETTINGS, WORLD
from simulator.paging import decode_cursor, encode_cursor, keyset_page
from simulator.params import Query
from simulator.timeutil import fmt, parse_rfc3339
from simulator.world import BOOKING_METHODS, Json

ORDERS = ("Ascending", "Descending")


async def list_bookings(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    query = Query(request.query)
    after: list[object] | None = None
    if query.has_cursor():
        saved, after = decode_cursor("booking", query.cursor_only())
    else:
        start, end = query.time("from"), query.time("to")
        if start and end and end < start:
            raise bad_request("to must not be before from")
        if HISTORY_RANGE_REQUIRED in request.app[DIALECTS]:
            _check_range(start, end)
        client_only = BOOKING_LIST_CLIENT_ONLY in request.app[DIALECTS]
        merchant = query.integer("merchantId")
        saved = {
            "clientId": (
                query.required_integer("clientId")
                if client_only or merchant is None
                else query.integer("clientId")
            ),
            "merchantId": merchant,
            "from": fmt(start) if start else None,
            "to": fmt(end) if end else None,
            "bookingMethod": query.choices("bookingMethod", BOOKING_METHODS),
            "order": query.choice("order", ORDERS, default="Ascending"),
        }
        query.text("language")
    try:
        client_id, merchant_id = saved["clientId"], saved["merchantId"]
        lo, hi = saved["from"], saved["to"]
        methods, descending = saved["bookingMethod"], saved["order"] == "Descending"
        for bound in (lo, hi):
            if bound is not None:
                parse_rfc3339(bound)
    except (KeyError, TypeError, ValueError):
        raise bad_request("cursor is not valid for this endpoint") from None
    if client_id is None:
        if merchant_id not in world.merchants:
            raise not_found("Merchant", merchant_id)
        listed: Iterator[Json] = (
            b for b in world.bookings.values() if b["merchantId"] == merchant_id
        )
    elif client_id not in world.clients and not any(world.bookings_of_client(client_id)):
        raise not_found("Client", client_id)
    else:
        listed = world.bookings_of_client(client_id)
    found = [
        booking
        for booking in listed
        if (merchant_id is None or booking["merchantId"] == merchant_id)
        and (not methods or booking["bookingMethod"] in methods)
        and (lo is None or booking["startsOn"] >= lo)
        and (hi is None or booking["startsOn"] <= hi)
    ]
    found.sort(key=lambda b: (b["startsOn"], b["bookingId"]), reverse=descending)
    page, last = keyset_page(
        found,
        lambda b: [b["startsOn"], b["bookingId"]],
        after,
        request.app[DIALECTS].page_size(request.app[SETTINGS].page_size),
        descending=descending,
    )
    group_events = group_events_of(world, page)
    staff_ids = dict.fromkeys(b["staffId"] for b in page if b["staffId"] is not None)
    merchant_ids = dict.fromkeys(b["merchantId"] for b in page)
    return answer(
        request,
        {
            "bookings": page,
            "groupEvents": group_events,
            "services": services_of(world, page, group_events),
            "staff": [world.staff[i] for i in staff_ids if i in world.staff],
            "merchants": [world.merchants[i] for i in merchant_ids if i in world.merchants],
            "resources": [],
            "cursor": encode_cursor("booking", saved, last) if last is not None else None,
        },
        null_lists=True,
    )


def _check_range(start: dt.datetime | None, end: dt.datetime | None) -> None:
    if start is None or end is None:
        raise bad_request("from and to are required")
    if end - start > dt.timedelta(days=HISTORY_MAX_DAYS):
        raise bad_request(f"from and to may be at most {HISTORY_MAX_DAYS} days apart")


async def get_booking(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    booking_id = request.match_info["bookingId"]
    Query(request.query).text("language")
    booking = world.bookings.get(booking_id)
    if booking is None:
        raise not_found("Booking", booking_id)
    body = _with_group_events(request, booking)
    if LISTS_NULL in request.app[DIALECTS] and not body["groupEvents"]:
        del body["groupEvents"]
    return answer(request, body, null_lists=True)


async def create_booking(request: web.Request) -> web.Response:
    booking = operations.create_booking(request.app[WORLD], await read_json_object(request))
    return _written(request, booking)


async def update_booking(request: web.Request) -> web.Response:
    booking = operations.update_booking(
        request.app[WORLD], request.match_info["bookingId"], await read_json_object(request)
    )
    return _written(request, booking)


def _written(request: web.Request, booking: Json) -> web.Response:
    if WRITE_BARE in request.app[DIALECTS]:
        return answer(request, booking, bare="booking")
    return answer(request, _with_group_events(request, booking), null_lists=True)


def _with_group_events(request: web.Request, booking: Json) -> Json:
    return {"booking": booking, "groupEvents": group_events_of(request.app[WORLD], [booking])}
