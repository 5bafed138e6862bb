"""Builders for Booxi's JSON objects, in the field order of ``samples/``.

**choice**: one flat booking object for every ``bookingMethod``; appointment-only
fields (``isScheduled``, ``clientCount``, ``quickNote``) and reservation-only fields
(``groupEventId``, ``attendees``, ``clientCommunication``) appear on their kind only.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from simulator.timeutil import fmt, parse_rfc3339

Json = dict[str, Any]

CLIENT_PII = ("firstName", "lastName", "email", "homePhoneNumber", "mobilePhoneNumber")
BOOKING_FIELDS = (
    "bookingId",
    "merchantId",
    "bookingMethod",
    "status",
    "isCompleted",
    "startsOn",
    "totalClientTimespan",
    "staffId",
    "staffFirstName",
    "staffLastName",
    "items",
    "location",
    "locationText",
    "payment",
    "createdOn",
    "createdBy",
    "createdByStaffId",
    "modifiedOn",
    "modifiedBy",
    "modifiedByStaffId",
    "isScheduled",
    "clientCount",
    "groupEventId",
    "client",
    "attendees",
    "clientCommunication",
    "quickNote",
)


def in_field_order(booking: Json) -> None:
    """Put a booking's keys in Booxi's order (that of ``samples/``), in place."""
    ordered = {key: booking[key] for key in BOOKING_FIELDS if key in booking}
    extra = {key: value for key, value in booking.items() if key not in ordered}
    booking.clear()
    booking.update(ordered)
    booking.update(extra)


def timespan(start: dt.datetime, minutes: int) -> Json:
    return {
        "start": fmt(start),
        "end": fmt(start + dt.timedelta(minutes=minutes)),
        "duration": minutes,
    }


def booking_client(
    client: Json, *, presence: str = "Expecting", additional_request: str = ""
) -> Json:
    """The client block a booking carries: a snapshot of the client at booking time."""
    return {
        "id": client["id"],
        **{field: client.get(field, "") for field in CLIENT_PII},
        "presence": presence,
        "remindByEmail": client.get("remindByEmail", True),
        "remindBySMS": client.get("remindBySMS", False),
        "additionalRequest": additional_request,
    }


def appointment_items(services: list[Json], start: dt.datetime) -> list[Json]:
    """One item per service, back to back from ``start``."""
    items = []
    cursor = start
    for service in services:
        minutes = service["duration"]
        items.append(
            {
                "serviceId": service["id"],
                "serviceName": service["name"],
                "price": dict(service["price"]),
                "reservedClientTimespan": timespan(cursor, minutes),
                "duration": minutes,
                "spacingAfter": 0,
                "isBusySpacingAfter": True,
            }
        )
        cursor += dt.timedelta(minutes=minutes)
    return items


def total_span(items: list[Json]) -> Json:
    start = items[0]["reservedClientTimespan"]["start"]
    end = items[-1]["reservedClientTimespan"]["end"]
    minutes = int((parse_rfc3339(end) - parse_rfc3339(start)).total_seconds() // 60)
    return {"start": start, "end": end, "duration": minutes}


def payment(items: list[Json], *, paid: bool) -> Json:
    total = sum((Decimal(item["price"].get("amount", "0")) for item in items), Decimal("0"))
    return {
        "total": f"{total:.2f}",
        "paid": f"{total if paid else Decimal('0'):.2f}",
        "onlinePaymentStatus": "None",
    }


def appointment(
    *,
    booking_id: str,
    staff: Json,
    services: list[Json],
    start: dt.datetime,
    client: Json,
    status: str,
    presence: str,
    is_completed: bool,
    created_on: dt.datetime,
    created_by: str,
    modified_on: dt.datetime,
    modified_by: str,
    additional_request: str = "",
    quick_note: str = "",
) -> Json:
    items = appointment_items(services, start)
    booking: Json = {
        "bookingId": booking_id,
        "merchantId": staff["merchantId"],
        "bookingMethod": "Appointment",
        "status": status,
        "isCompleted": is_completed,
        "startsOn": fmt(start),
        "totalClientTimespan": total_span(items),
        "staffId": staff["id"],
        "staffFirstName": staff["firstName"],
        "staffLastName": staff["lastName"],
        "items": items,
        "location": "Business",
        "locationText": "",
        "payment": payment(items, paid=is_completed),
        "createdOn": fmt(created_on),
        "createdBy": created_by,
        "modifiedOn": fmt(modified_on),
        "modifiedBy": modified_by,
        "isScheduled": True,
        "clientCount": 1,
        "client": booking_client(client, presence=presence, additional_request=additional_request),
        "quickNote": quick_note,
    }
    if created_by == "Staff":
        booking["createdByStaffId"] = staff["id"]
    if modified_by == "Staff":
        booking["modifiedByStaffId"] = staff["id"]
    in_field_order(booking)
    return booking


def unassigned(booking: Json) -> Json:
    """An appointment request no staff member has taken yet (booked online with "no
    preference"): ``staffId``, ``staffFirstName`` and ``staffLastName`` are ``null``,
    and nothing names a staff member as its author. In place; the booking.

    **choice** (Booxi's shape of an unassigned booking is unknown): ``null`` fields;
    the ``unassigned-absent`` and ``unassigned-zero`` dialects play the other readings
    (``simulator.answers``)."""
    booking.update(staffId=None, staffFirstName=None, staffLastName=None)
    booking.pop("createdByStaffId", None)
    booking.pop("modifiedByStaffId", None)
    in_field_order(booking)
    return booking


def reservation(
    *,
    booking_id: str,
    event: Json,
    service: Json,
    client: Json,
    status: str,
    presence: str,
    created_on: dt.datetime,
    created_by: str,
) -> Json:
    start = parse_rfc3339(event["start"])
    span = timespan(start, event["duration"])
    items = [
        {
            "serviceId": service["id"],
            "serviceName": service["name"],
            "price": dict(service["price"]),
            "reservedClientTimespan": dict(span),
        }
    ]
    requester = booking_client(client, presence=presence)
    return {
        "bookingId": booking_id,
        "merchantId": event["merchantId"],
        "bookingMethod": "GroupReservation",
        "status": status,
        "isCompleted": bool(event["isCompleted"]),
        "startsOn": event["start"],
        "totalClientTimespan": span,
        "staffId": event["staffId"],
        "staffFirstName": event["staffFirstName"],
        "staffLastName": event["staffLastName"],
        "items": items,
        "location": event["location"],
        "locationText": event["locationText"],
        "payment": payment(items, paid=False),
        "createdOn": fmt(created_on),
        "createdBy": created_by,
        "modifiedOn": fmt(created_on),
        "modifiedBy": created_by,
        "groupEventId": event["id"],
        "client": {**requester, "isAttending": True},
        "attendees": [
            {
                **{k: v for k, v in requester.items() if k != "additionalRequest"},
                "isRequester": True,
                "surveyAnswers": None,
            }
        ],
        "clientCommunication": "ClientOnly",
    }


def price(amount: str, currency: str) -> Json:
    return {
        "visibility": "Show",
        "amount": amount,
        "amountPerPerson": "0.00",
        "amountPerHour": "0.00",
        "currency": currency,
        "isStartingAt": False,
        "tax": "None",
    }


def anonymize_booking_client(block: Json) -> None:
    """Blank a booking's copy of a client's personal data, keeping the id and presence."""
    for field in CLIENT_PII:
        if field in block:
            block[field] = ""
    if "additionalRequest" in block:
        block["additionalRequest"] = ""
