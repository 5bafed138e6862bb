"""Writes: the state changes behind ``POST/PUT /booking`` and the client endpoints.

Shared by the HTTP handlers and ``/_sim/mutate``, so random changes obey the same
rules as API calls. Every change stamps ``modifiedOn`` and emits an event. Choices:

- Writes answer 200 with the object wrapped: ``{"booking": ...}``, ``{"client": ...,
  "clientLinks": [...]}``; ``DELETE /client/{id}`` answers 204.
- ``POST /booking`` without ``client.id`` matches a client of the same store by
  ``moduleId``+``externalId``, then first and last name (case-insensitive) with
  e-mail, home phone or mobile phone; otherwise it creates one (which needs a first
  name, a last name and an e-mail or phone).
- Overlapping another live appointment is a 409 ``BookingConflict``; a group event
  of the staff member ``ScheduleConflict``; a busy time slot ``TimeSlotConflict``; a
  full group event ``BookingConflict``; an ``externalId`` already linked to another
  client ``ModuleConflict``.
- An appointment request no staff member has taken (``staffId: null``, see
  ``shapes.unassigned``) holds no one's time; ``PUT /booking`` with a ``staffId``
  assigns it (409 when that staff member is busy then), with ``status`` approves or
  cancels (declines) it; without ``staffId`` it stays unassigned.
- ``PUT /booking`` on a group reservation may change ``status``, ``isCompleted`` and
  ``client.presence`` only (Booxi documents the rest for appointments alone).
- Deleting a client with a future live booking is a 409 ``ClientHasFutureBookings``.
  Deleting one removes it and its module links and blanks its personal data in the
  bookings that name it (their ``modifiedOn`` moves on).
- Client changes are events too: ``client.created``, ``client.updated``,
  ``client.deleted`` with ``content: {"client", "clientLinks"}`` (the deleted client
  is reduced to its ``id`` and ``merchantId``).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from simulator import shapes
from simulator.body import Fields
from simulator.errors import BooxiError, bad_request, conflict, not_found
from simulator.timeutil import fmt, parse_rfc3339
from simulator.world import PRESENCES, STATUSES, Json, World

SOURCES = ("Staff", "Client")
GENDERS = ("Unknown", "Female", "Male", "Other")
CLIENT_TEXT = (
    "firstName",
    "lastName",
    "email",
    "homePhoneNumber",
    "mobilePhoneNumber",
    "language",
    "quickNote",
    "membershipNumber",
)
CLIENT_FLAGS = ("remindBySMS", "remindByEmail", "inMailingList")
MAX_CLIENT_MATCHES = 20


# ---- bookings ----------------------------------------------------------------------
def create_booking(world: World, data: dict[str, Any]) -> Json:
    body = Fields(data)
    merchant_id = body.req_integer("merchantId")
    if merchant_id not in world.merchants:
        raise not_found("Merchant", merchant_id)
    method = body.choice(
        "bookingMethod", ("Appointment", "GroupReservation", "Rental"), required=True
    )
    status = body.choice("status", STATUSES) or "Approved"
    if status != "Approved":
        raise bad_request("status must be Approved when creating a booking")
    created_by = body.choice("createdBy", SOURCES) or "Staff"
    body.text("language")
    client_fields = body.obj("client", required=True)
    assert client_fields is not None
    if method == "Rental":
        raise bad_request("bookingMethod Rental is not offered by this merchant")
    if method == "GroupReservation":
        return _create_reservation(world, body, merchant_id, client_fields, created_by)
    staff_id = body.req_integer("staffId")
    staff = _staff_of(world, merchant_id, staff_id)
    start = body.time("startsOn", required=True)
    assert start is not None
    services = _services_of(world, merchant_id, body.objects("items", required=True) or [])
    client = _match_or_create_client(world, merchant_id, client_fields)
    additional = client_fields.text("additionalRequest") or ""
    now = world.clock().replace(microsecond=0)
    booking = shapes.appointment(
        booking_id="",
        staff=staff,
        services=services,
        start=start.replace(microsecond=0),
        client=client,
        status="Approved",
        presence="Expecting",
        is_completed=False,
        created_on=now,
        created_by=created_by,
        modified_on=now,
        modified_by=created_by,
        additional_request=additional,
        quick_note=body.text("quickNote") or "",
    )
    _check_free(world, booking)
    booking["bookingId"] = world.new_booking_id()
    world.put_booking(booking)
    world.emit_booking(booking, created=True)
    return booking


def create_request(
    world: World, merchant_id: int, services: list[Json], start: dt.datetime, client: Json
) -> Json:
    """An appointment request booked online with no staff member (``PendingStaffApproval``,
    ``createdBy: Client``; ``shapes.unassigned``): what a store's dispatch queue holds.
    Not reachable through ``POST /booking``, where Booxi takes ``Approved`` and a
    ``staffId`` only; ``/_sim/mutate`` makes them, as Booxi's own booking pages would."""
    now = world.clock().replace(microsecond=0)
    booking = shapes.appointment(
        booking_id=world.new_booking_id(),
        staff={"id": 0, "merchantId": merchant_id, "firstName": "", "lastName": ""},
        services=services,
        start=start.replace(microsecond=0),
        client=client,
        status="PendingStaffApproval",
        presence="Expecting",
        is_completed=False,
        created_on=now,
        created_by="Client",
        modified_on=now,
        modified_by="Client",
    )
    shapes.unassigned(booking)
    world.put_booking(booking)
    world.emit_booking(booking, created=True)
    return booking


def _create_reservation(
    world: World, body: Fields, merchant_id: int, client_fields: Fields, created_by: str
) -> Json:
    event_id = body.req_integer("groupEventId")
    event = world.group_events.get(event_id)
    if event is None or event["merchantId"] != merchant_id:
        raise not_found("GroupEvent", event_id)
    if event["attendeeCount"] >= event["attendeeCapacity"]:
        raise conflict(f"group event {event_id} is full", "BookingConflict")
    client = _match_or_create_client(world, merchant_id, client_fields)
    booking = shapes.reservation(
        booking_id=world.new_booking_id(),
        event=event,
        service=world.services[event["serviceId"]],
        client=client,
        status="Approved",
        presence="Expecting",
        created_on=world.clock().replace(microsecond=0),
        created_by=created_by,
    )
    world.put_booking(booking)
    event["attendeeCount"] += 1
    world.emit_booking(booking, created=True)
    return booking


def update_booking(world: World, booking_id: str, data: dict[str, Any]) -> Json:
    old = world.bookings.get(booking_id)
    if old is None:
        raise not_found("Booking", booking_id)
    body = Fields(data)
    booking = _deep_copy(old)
    status = body.choice("status", STATUSES)
    completed = body.boolean("isCompleted")
    client = body.obj("client")
    presence = client.choice("presence", PRESENCES) if client else None
    modified_by = body.choice("modifiedBy", SOURCES) or "Staff"
    modifier = body.integer("modifiedByStaffId")
    if modifier is not None:
        _staff_of(world, booking["merchantId"], modifier)
    reschedule = any(key in body for key in ("startsOn", "staffId", "items"))
    if booking["bookingMethod"] != "Appointment" and (
        reschedule or "quickNote" in body or (client and "additionalRequest" in client)
    ):
        raise bad_request(
            "only appointments can be rescheduled or edited; "
            "a group reservation takes status, isCompleted and client.presence"
        )
    if status is not None:
        booking["status"] = status
    if completed is not None:
        booking["isCompleted"] = completed
    if presence is not None:
        booking["client"]["presence"] = presence
    if client and "additionalRequest" in client:
        booking["client"]["additionalRequest"] = client.text("additionalRequest")
    if "quickNote" in body:
        booking["quickNote"] = body.text("quickNote")
    if reschedule:
        _reschedule(world, booking, body)
    if (
        booking["status"] != "Cancelled"
        and booking["bookingMethod"] == "Appointment"
        and (reschedule or old["status"] == "Cancelled")
    ):
        _check_free(world, booking)
    if booking == old:
        return old
    if booking["bookingMethod"] == "GroupReservation" and booking["status"] != old["status"]:
        _recount(world, booking["groupEventId"], old["status"], booking["status"])
    if booking["bookingMethod"] == "Appointment":
        booking["payment"] = shapes.payment(booking["items"], paid=booking["isCompleted"])
    world.touch(booking, by=modified_by, staff_id=modifier or booking["staffId"])
    world.put_booking(booking)
    world.emit_booking(booking, created=False)
    return booking


def _reschedule(world: World, booking: Json, body: Fields) -> None:
    """New time, staff member or items; a request no one has taken stays unassigned
    unless ``staffId`` is given (assigning it: the dispatch of a request)."""
    start = body.time("startsOn") or parse_rfc3339(booking["startsOn"])
    staff_id = body.integer("staffId") or booking["staffId"]
    staff: Json = {"id": None, "firstName": None, "lastName": None}
    if staff_id is not None:
        staff = _staff_of(world, booking["merchantId"], staff_id)
    item_fields = body.objects("items", required="items" in body)
    if item_fields is not None:
        services = _services_of(world, booking["merchantId"], item_fields)
    else:
        services = [world.services[item["serviceId"]] for item in booking["items"]]
    items = shapes.appointment_items(services, start.replace(microsecond=0))
    booking.update(
        startsOn=fmt(start),
        staffId=staff["id"],
        staffFirstName=staff["firstName"],
        staffLastName=staff["lastName"],
        items=items,
        totalClientTimespan=shapes.total_span(items),
    )


def _check_free(world: World, booking: Json) -> None:
    """409 when the booking's staff member is busy then (an unassigned request holds no
    one's time: nothing to check)."""
    if booking["staffId"] is None:
        return
    span = booking["totalClientTimespan"]
    name = world.conflict_for(
        booking["staffId"], span["start"], span["end"], ignore=booking["bookingId"] or None
    )
    if name is not None:
        raise conflict(
            f"staff {booking['staffId']} is not free from {span['start']} to {span['end']}", name
        )


def _recount(world: World, event_id: int, before: str, after: str) -> None:
    event = world.group_events[event_id]
    if before == "Cancelled" and after != "Cancelled":
        if event["attendeeCount"] >= event["attendeeCapacity"]:
            raise conflict(f"group event {event_id} is full", "BookingConflict")
        event["attendeeCount"] += 1
    elif before != "Cancelled" and after == "Cancelled":
        event["attendeeCount"] -= 1


def _staff_of(world: World, merchant_id: int, staff_id: int) -> Json:
    staff = world.staff.get(staff_id)
    if staff is None:
        raise not_found("Staff", staff_id)
    if staff["merchantId"] != merchant_id:
        raise bad_request(f"staff {staff_id} does not work at merchant {merchant_id}")
    return staff


def _services_of(world: World, merchant_id: int, items: list[Fields]) -> list[Json]:
    services = []
    for item in items:
        service_id = item.req_integer("serviceId")
        service = world.services.get(service_id)
        if service is None:
            raise not_found("Service", service_id)
        if service["merchantId"] != merchant_id or service["bookingMethod"] != "Appointment":
            raise bad_request(
                f"service {service_id} is not an appointment service of merchant {merchant_id}"
            )
        services.append(service)
    return services


# ---- clients -----------------------------------------------------------------------
def _match_or_create_client(world: World, merchant_id: int, fields: Fields) -> Json:
    client_id = fields.integer("id")
    if client_id is not None:
        client = world.clients.get(client_id)
        if client is None:
            raise not_found("Client", client_id)
        return client
    module_id, external_id = fields.text("moduleId"), fields.text("externalId")
    if module_id and external_id:
        for link in world.links.values():
            if link["moduleId"] == module_id and link["externalId"] == external_id:
                return world.clients[link["clientId"]]
    first = (fields.text("firstName") or "").strip().lower()
    last = (fields.text("lastName") or "").strip().lower()
    if first and last:
        for key in ("email", "homePhoneNumber", "mobilePhoneNumber"):
            wanted = (fields.text(key) or "").strip().lower()
            if not wanted:
                continue
            for client in world.clients.values():
                if (
                    client["merchantId"] == merchant_id
                    and client["firstName"].lower() == first
                    and client["lastName"].lower() == last
                    and client.get(key, "").lower() == wanted
                ):
                    return client
    if not any(fields.text(key) for key in ("email", "homePhoneNumber", "mobilePhoneNumber")):
        raise bad_request("client needs an id, or a first name, last name and an e-mail or phone")
    client = create_client(world, {**fields.data, "merchantId": merchant_id})
    if module_id and external_id:
        put_module_link(world, client["id"], module_id, {"externalId": external_id})
    return client


def create_client(world: World, data: dict[str, Any]) -> Json:
    body = Fields(data)
    merchant_id = body.req_integer("merchantId")
    if merchant_id not in world.merchants:
        raise not_found("Merchant", merchant_id)
    body.text("firstName", required=True)
    body.text("lastName", required=True)
    now = fmt(world.clock())
    client: Json = {
        "id": world.counters.take("client"),
        "membershipNumber": "",
        "merchantId": merchant_id,
        "firstName": "",
        "lastName": "",
        "language": "en",
        "email": "",
        "homePhoneNumber": "",
        "mobilePhoneNumber": "",
        "remindBySMS": False,
        "remindByEmail": True,
        "inMailingList": False,
        "dateOfBirth": None,
        "address": {"street": "", "city": "", "state": "", "postalCode": "", "country": ""},
        "gender": "Unknown",
        "status": "Active",
        "quickNote": "",
        "createdOn": now,
        "modifiedOn": now,
        "metadata": {},
    }
    _apply_client_fields(client, body)
    world.clients[client["id"]] = client
    world.emit("client.created", {"client": client, "clientLinks": []})
    return client


def update_client(world: World, client_id: int, data: dict[str, Any]) -> Json:
    client = world.clients.get(client_id)
    if client is None:
        raise not_found("Client", client_id)
    updated = _deep_copy(client)
    _apply_client_fields(updated, Fields(data))
    if not updated["firstName"].strip() or not updated["lastName"].strip():
        raise bad_request("firstName and lastName must not be empty")
    if updated != client:
        previous = parse_rfc3339(client["modifiedOn"])
        now = world.clock().replace(microsecond=0)
        updated["modifiedOn"] = fmt(max(now, previous + dt.timedelta(seconds=1)))
        world.clients[client_id] = updated
        world.emit("client.updated", {"client": updated, "clientLinks": world.links_of(client_id)})
    return world.clients[client_id]


def delete_client(world: World, client_id: int) -> None:
    client = world.clients.get(client_id)
    if client is None:
        raise not_found("Client", client_id)
    now = fmt(world.clock())
    bookings = list(world.bookings_of_client(client_id))
    if any(b["status"] != "Cancelled" and b["startsOn"] > now for b in bookings):
        raise BooxiError(
            409,
            f"client {client_id} has future bookings and cannot be deleted",
            error="ClientHasFutureBookings",
        )
    for booking in bookings:
        shapes.anonymize_booking_client(booking["client"])
        for attendee in booking.get("attendees", []):
            if attendee.get("id") == client_id:
                shapes.anonymize_booking_client(attendee)
        world.touch(booking, by="Staff", staff_id=None)
    for key in [key for key in world.links if key[0] == client_id]:
        del world.links[key]
    del world.clients[client_id]
    world.emit(
        "client.deleted",
        {"client": {"id": client_id, "merchantId": client["merchantId"]}, "clientLinks": []},
    )


def put_module_link(world: World, client_id: int, module_id: str, data: dict[str, Any]) -> Json:
    if client_id not in world.clients:
        raise not_found("Client", client_id)
    body = Fields(data)
    external_id = body.text("externalId", required=True, max_length=200)
    metadata = body.string_map("metadata")
    for (other, module), existing in world.links.items():
        if module == module_id and existing["externalId"] == external_id and other != client_id:
            raise conflict(
                f"externalId {external_id} is linked to client {other} already", "ModuleConflict"
            )
    now = fmt(world.clock())
    link = world.links.get((client_id, module_id))
    if link is None:
        link = {
            "clientId": client_id,
            "moduleId": module_id,
            "externalId": external_id,
            "metadata": metadata or {},
            "createdOn": now,
            "modifiedOn": now,
        }
    else:
        link = {**link, "externalId": external_id, "modifiedOn": now}
        if metadata is not None:
            link["metadata"] = metadata
    world.links[(client_id, module_id)] = link
    world.emit(
        "client.updated",
        {"client": world.clients[client_id], "clientLinks": world.links_of(client_id)},
    )
    return link


def search_clients(world: World, fields: dict[str, str | None]) -> list[Json]:
    """``GET /client``: one criterion family per request, first matches only."""
    module_id, external_id = fields.get("moduleId"), fields.get("externalId")
    contact = {k: fields.get(k) for k in ("firstName", "lastName", "email", "phoneNumber")}
    if bool(module_id) != bool(external_id):
        raise bad_request("moduleId and externalId go together")
    if module_id:
        if any(contact.values()):
            raise bad_request("search by moduleId+externalId or by contact info, not both")
        return [
            world.clients[link["clientId"]]
            for link in world.links.values()
            if link["moduleId"] == module_id and link["externalId"] == external_id
        ][:MAX_CLIENT_MATCHES]
    merchant = fields.get("merchantId")
    if not merchant:
        raise bad_request("merchantId is required to search by contact info")
    if bool(contact["firstName"]) != bool(contact["lastName"]):
        raise bad_request("firstName and lastName go together")
    given = [k for k, v in contact.items() if v and k != "lastName"]
    if len(given) != 1:
        raise bad_request("give exactly one of firstName+lastName, email or phoneNumber")
    merchant_id = int(merchant)
    matches = []
    for client in world.clients.values():
        if client["merchantId"] != merchant_id:
            continue
        if given[0] == "firstName":
            hit = (
                client["firstName"].lower() == (contact["firstName"] or "").lower()
                and client["lastName"].lower() == (contact["lastName"] or "").lower()
            )
        elif given[0] == "email":
            hit = client["email"].lower() == (contact["email"] or "").lower()
        else:
            hit = (contact["phoneNumber"] or "") in (
                client["homePhoneNumber"],
                client["mobilePhoneNumber"],
            )
        if hit:
            matches.append(client)
            if len(matches) == MAX_CLIENT_MATCHES:
                break
    return matches


def _apply_client_fields(client: Json, body: Fields) -> None:
    for key in CLIENT_TEXT:
        value = body.text(key, max_length=500)
        if value is not None:
            client[key] = value
    if client.get("email") and "@" not in client["email"]:
        raise bad_request("email is not an e-mail address")
    for key in CLIENT_FLAGS:
        flag = body.boolean(key)
        if flag is not None:
            client[key] = flag
    gender = body.choice("gender", GENDERS)
    if gender is not None:
        client["gender"] = gender
    status = body.choice("status", ("Active", "Blocked"))
    if status is not None:
        client["status"] = status
    birth = body.obj("dateOfBirth")
    if birth is not None:
        day, month, year = birth.integer("day"), birth.integer("month"), birth.integer("year")
        try:
            if day and month and year:
                dt.date(year, month, day)
        except ValueError:
            raise bad_request("dateOfBirth is not a valid date") from None
        client["dateOfBirth"] = {"day": day, "month": month, "year": year}
    address = body.obj("address")
    if address is not None:
        client["address"] = {
            key: address.text(key, max_length=200) or ""
            for key in ("street", "city", "state", "postalCode", "country")
        }
    metadata = body.string_map("metadata")
    if metadata is not None:
        client["metadata"] = metadata


def _deep_copy(value: Json) -> Json:
    return copy.deepcopy(value)
