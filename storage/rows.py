"""Booxi's JSON objects into column values: the one place camelCase meets snake_case.

Each function takes an object as Booxi sent it and returns the row to store, raising
``MalformedError`` when a field the mirror indexes on is missing or of the wrong type.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from storage.errors import MalformedError
from storage.times import instant_key

Json = dict[str, Any]


def dump(obj: Any) -> str:
    """The JSON text kept in ``raw``: compact, key order and characters as received
    (``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))``). Every webhook and
    poll dumps each object it stores: the C encoder is made once here, rather than on
    every call as ``dumps`` with options does (half the cost of a small object). No
    circular-reference check: what is dumped was parsed from JSON."""
    if _C_DUMP is None:  # an interpreter without the C accelerator
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return "".join(_C_DUMP(obj, 0))


_C_DUMP = (
    None
    if json.encoder.c_make_encoder is None  # type: ignore[attr-defined]
    else json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring,
        None,
        ":",
        ",",
        False,
        False,
        True,
    )
)


def _int(obj: Json, key: str, *, required: bool = True) -> int | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedError(f"{key} must be an integer, got {value!r}")
    return value


def _str(obj: Json, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedError(f"{key} must be a non-empty string")
    return value


def _instant(obj: Json, key: str) -> str:
    try:
        return instant_key(_str(obj, key))
    except ValueError:
        raise MalformedError(f"{key} must be an RFC 3339 date-time, got {obj.get(key)!r}") from None


def _object(obj: Any, what: str) -> Json:
    if not isinstance(obj, dict):
        raise MalformedError(f"{what} must be a JSON object")
    return obj


def _base(obj: Json, source: str, now: dt.datetime) -> Json:
    return {"raw": dump(obj), "source": source, "synced_at": now}


def booking_row(obj: Any, source: str, now: dt.datetime) -> Json:
    booking = _object(obj, "booking")
    span = booking.get("totalClientTimespan")
    span = span if isinstance(span, dict) else {}
    client = booking.get("client")
    client_id = client.get("id") if isinstance(client, dict) else None
    if client_id is not None and (isinstance(client_id, bool) or not isinstance(client_id, int)):
        raise MalformedError("booking.client.id must be an integer")
    starts = _instant(span, "start") if span.get("start") else _instant(booking, "startsOn")
    ends = _instant(span, "end") if span.get("end") else starts
    return {
        "booking_id": _str(booking, "bookingId"),
        "merchant_id": _int(booking, "merchantId"),
        "staff_id": staff_of(booking),
        "client_id": client_id,
        "method": _str(booking, "bookingMethod"),
        "status": _str(booking, "status"),
        "starts_on": starts,
        "ends_on": ends,
        "modified_on": _instant(booking, "modifiedOn"),
        "group_event_id": _int(booking, "groupEventId", required=False),
        **_base(booking, source, now),
    }


def staff_of(booking: Json) -> int | None:
    """The staff member a booking is assigned to; None for a request no one has taken.

    **choice** (how Booxi shows an unassigned booking is unknown): ``staffId`` ``null``,
    absent or ``0`` all mean "no staff member"; the stored JSON keeps what Booxi sent."""
    staff_id = _int(booking, "staffId", required=False)
    return staff_id or None


def calendar_event_row(obj: Any, source: str, now: dt.datetime) -> Json:
    event = _object(obj, "calendar event")
    return {
        "id": _int(event, "id"),
        "merchant_id": _int(event, "merchantId", required=False),
        "staff_id": _int(event, "staffId"),
        "starts_on": _instant(event, "start"),
        "ends_on": _instant(event, "end"),
        "type": _str(event, "type"),
        "booking_id": event.get("bookingId"),
        "group_event_id": _int(event, "groupEventId", required=False),
        "time_slot_id": _int(event, "timeSlotId", required=False),
        "provisional": False,
        **_base(event, source, now),
    }


def derived_calendar_events(booking: Json, known_ids: list[int]) -> list[Json]:
    """Calendar events for an appointment seen outside a poll (webhook, write, lookup).

    One per service item, as Booxi's calendar gives them. Ids already known for this
    booking are reused in item order; the others are provisional: negative, derived from
    the booking id and item index, until a poll brings Booxi's own.
    """
    if booking.get("bookingMethod") != "Appointment" or booking.get("status") == "Cancelled":
        return []
    staff = booking.get("staffId")
    if isinstance(staff, bool) or not isinstance(staff, int) or staff <= 0:
        return []  # a request no staff member has taken is on no calendar
    events = []
    for index, item in enumerate(booking.get("items") or []):
        span = item.get("reservedClientTimespan") if isinstance(item, dict) else None
        if not isinstance(span, dict) or not span.get("start") or not span.get("end"):
            continue
        if index < len(known_ids):
            event_id = known_ids[index]
        else:
            digest = hashlib.sha256(f"{booking['bookingId']}:{index}".encode()).hexdigest()
            event_id = -int(digest[:12], 16)
        events.append(
            {
                "id": event_id,
                "merchantId": booking.get("merchantId"),
                "staffId": booking.get("staffId"),
                "start": span["start"],
                "end": span["end"],
                "type": "Appointment",
                "bookingId": booking["bookingId"],
            }
        )
    return events


def group_event_row(obj: Any, source: str, now: dt.datetime) -> Json:
    event = _object(obj, "group event")
    return {
        "id": _int(event, "id"),
        "merchant_id": _int(event, "merchantId", required=False),
        "staff_id": _int(event, "staffId", required=False),
        "starts_on": _instant(event, "start"),
        **_base(event, source, now),
    }


def time_slot_row(obj: Any, source: str, now: dt.datetime) -> Json:
    slot = _object(obj, "time slot")
    return {
        "id": _int(slot, "id"),
        "merchant_id": _int(slot, "merchantId", required=False),
        "staff_id": _int(slot, "staffId"),
        "starts_on": _instant(slot, "start"),
        "ends_on": _instant(slot, "end"),
        "type": str(slot.get("type") or ""),
        **_base(slot, source, now),
    }


def merchant_row(obj: Any, source: str, now: dt.datetime) -> Json:
    merchant = _object(obj, "merchant")
    return {
        "id": _int(merchant, "id"),
        "group_id": _int(merchant, "groupId", required=False),
        "time_zone": str(merchant.get("timeZone") or ""),
        **_base(merchant, source, now),
    }


def staff_row(obj: Any, source: str, now: dt.datetime) -> Json:
    staff = _object(obj, "staff")
    return {
        "id": _int(staff, "id"),
        "merchant_id": _int(staff, "merchantId", required=False),
        "status": str(staff.get("status") or ""),
        **_base(staff, source, now),
    }


def service_row(obj: Any, source: str, now: dt.datetime) -> Json:
    service = _object(obj, "service")
    return {
        "id": _int(service, "id"),
        "merchant_id": _int(service, "merchantId", required=False),
        "category_id": _int(service, "categoryId", required=False),
        "booking_method": str(service.get("bookingMethod") or ""),
        **_base(service, source, now),
    }


def service_category_row(obj: Any, source: str, now: dt.datetime) -> Json:
    category = _object(obj, "service category")
    return {
        "id": _int(category, "id"),
        "merchant_id": _int(category, "merchantId", required=False),
        **_base(category, source, now),
    }


def client_row(obj: Any, source: str, now: dt.datetime) -> Json:
    client = _object(obj, "client")

    def key(field: str) -> str:
        value = client.get(field)
        return value.strip().lower() if isinstance(value, str) else ""

    modified = client.get("modifiedOn")
    return {
        "id": _int(client, "id"),
        "merchant_id": _int(client, "merchantId", required=False),
        "first_name": key("firstName"),
        "last_name": key("lastName"),
        "email": key("email"),
        "phone_home": key("homePhoneNumber"),
        "phone_mobile": key("mobilePhoneNumber"),
        "modified_on": _instant(client, "modifiedOn") if modified else None,
        **_base(client, source, now),
    }


def client_link_row(obj: Any, source: str, now: dt.datetime) -> Json:
    link = _object(obj, "client link")
    modified = link.get("modifiedOn")
    return {
        "entity": "client",
        "entity_id": _int(link, "clientId"),
        "module_id": _str(link, "moduleId"),
        "external_id": _str(link, "externalId"),
        "modified_on": _instant(link, "modifiedOn") if modified else None,
        **_base(link, source, now),
    }


LINK_ID_FIELDS = {"staff": "staffId", "service": "serviceId", "client": "clientId"}


def entity_link_row(obj: Any, entity: str, source: str, now: dt.datetime) -> Json:
    """A staff or service module link (``staffId``/``serviceId``, ``moduleId``,
    ``externalId``...), as ``client_link_row`` does for clients."""
    link = _object(obj, f"{entity} link")
    modified = link.get("modifiedOn")
    return {
        "entity": entity,
        "entity_id": _int(link, LINK_ID_FIELDS[entity]),
        "module_id": _str(link, "moduleId"),
        "external_id": _str(link, "externalId"),
        "modified_on": _instant(link, "modifiedOn") if modified else None,
        **_base(link, source, now),
    }
