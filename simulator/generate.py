"""Seeded, deterministic data: the same seed and anchor give the same world.

Stores (merchants) with time zones, staff, categories, services, clients with module
links (``crm``), staff and service module links (``hr``: ``EMP-<n>``, ``pos``:
``SKU-<n>``), the staff who perform each service (at least half of its store's staff,
drawn from a separate generator so adding them changed nothing else; every staff member
stays ``Online``, since taking some offline would change generated fields), and from
``days_before`` days before the anchor to ``days_after`` after it: single- and multi-
service appointments, group events with reservations, busy and available time slots,
every status and presence, some cancelled. Staff work 09:00 to 18:00 local time, Monday
to Saturday; non-cancelled items never overlap.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from simulator import names, shapes
from simulator.settings import SimSettings
from simulator.timeutil import fmt
from simulator.world import Json, World

MODULE_ID = "crm"
STAFF_MODULE_ID = "hr"
SERVICE_MODULE_ID = "pos"
GROUP_ID = 201


def build_world(settings: SimSettings) -> World:
    rng = random.Random(settings.seed)
    world = World()
    anchor = settings.anchor
    for index in range(settings.stores):
        merchant = _merchant(rng, index, anchor)
        world.merchants[merchant["id"]] = merchant
        _catalogue(world, merchant, anchor)
        for _ in range(settings.staff_per_store):
            member = _staff(rng, world, merchant, anchor)
            world.staff[member["id"]] = member
    merchant_ids = list(world.merchants)
    for _ in range(settings.clients):
        _client(rng, world, rng.choice(merchant_ids), anchor)
    clients_by_merchant: dict[int, list[Json]] = {m: [] for m in merchant_ids}
    for client in world.clients.values():
        clients_by_merchant[client["merchantId"]].append(client)
    for merchant_id in merchant_ids:  # a store always has someone to book
        if not clients_by_merchant[merchant_id]:
            clients_by_merchant[merchant_id].append(_client(rng, world, merchant_id, anchor))
    for member in world.staff.values():
        _schedule(rng, world, settings, member, clients_by_merchant[member["merchantId"]])
    _directory_links(random.Random(f"directory-{settings.seed}"), world)
    _requests(random.Random(f"requests-{settings.seed}"), world, settings)
    return world


def build_store(
    rng: random.Random, world: World, settings: SimSettings, index: int, clients: int
) -> Json:
    """Store number ``index`` built into ``world``: its catalogue, ``staff_per_store``
    staff members, ``clients`` clients of its own and every staff member's schedule; the
    store. Ids stay unique across calls on one ``world`` (counters, and staff ids from
    how many staff it holds), so a large world can be built a store at a time and each
    store's bookings dropped once used (``bench.generate_db``)."""
    merchant = _merchant(rng, index, settings.anchor)
    world.merchants[merchant["id"]] = merchant
    _catalogue(world, merchant, settings.anchor)
    members = []
    for _ in range(settings.staff_per_store):
        member = _staff(rng, world, merchant, settings.anchor)
        world.staff[member["id"]] = member
        members.append(member)
    people = [_client(rng, world, merchant["id"], settings.anchor) for _ in range(clients)]
    for member in members:
        _schedule(rng, world, settings, member, people)
    return merchant


def _directory_links(rng: random.Random, world: World) -> None:
    """Staff and service module links and who performs what: drawn from their own
    ``rng`` after everything else, so the rest of the world is as it was without them."""
    numbers = rng.sample(range(1000, 10000), len(world.staff))
    for number, member in zip(numbers, sorted(world.staff.values(), key=_id), strict=True):
        world.staff_links[(member["id"], STAFF_MODULE_ID)] = {
            "staffId": member["id"],
            "moduleId": STAFF_MODULE_ID,
            "externalId": f"EMP-{number}",
            "metadata": {},
            "createdOn": member["createdOn"],
            "modifiedOn": member["modifiedOn"],
        }
    numbers = rng.sample(range(10000, 100000), len(world.services))
    for number, service in zip(numbers, sorted(world.services.values(), key=_id), strict=True):
        world.service_links[(service["id"], SERVICE_MODULE_ID)] = {
            "serviceId": service["id"],
            "moduleId": SERVICE_MODULE_ID,
            "externalId": f"SKU-{number}",
            "metadata": {},
            "createdOn": service["createdOn"],
            "modifiedOn": service["modifiedOn"],
        }
        staff = sorted(
            m["id"] for m in world.staff.values() if m["merchantId"] == service["merchantId"]
        )
        if staff:
            picked = rng.sample(staff, rng.randint(max(1, len(staff) // 2), len(staff)))
        else:
            picked = []
        world.service_staff[service["id"]] = sorted(picked)


REQUEST_STATUSES = ("PendingStaffApproval", "PendingClientApproval", "Approved", "Cancelled")
REQUEST_WEIGHTS = (70, 10, 10, 10)


def _requests(rng: random.Random, world: World, settings: SimSettings) -> None:
    """Appointment requests no staff member has taken yet (``shapes.unassigned``): per
    store, about one a week from ``days_before`` back to ``days_after`` ahead, mostly
    ``PendingStaffApproval``, some already cancelled or approved without a staff member.
    Drawn from their own ``rng`` after everything else, so the rest of the world is as it
    was without them; they are on no calendar (no staff member) and overlap nothing."""
    anchor = settings.anchor
    for merchant_id in sorted(world.merchants):
        services = sorted(
            (
                s
                for s in world.services.values()
                if s["merchantId"] == merchant_id and s["bookingMethod"] == "Appointment"
            ),
            key=_id,
        )
        clients = sorted(
            (c for c in world.clients.values() if c["merchantId"] == merchant_id), key=_id
        )
        if not services or not clients:
            continue
        days = settings.days_before + settings.days_after
        for _ in range(max(2, days // 7)):
            day = rng.randrange(-settings.days_before, settings.days_after)
            start = (anchor + dt.timedelta(days=day)).replace(hour=rng.randrange(14, 22))
            created = min(start, anchor) - dt.timedelta(
                days=rng.randrange(0, 10), minutes=rng.randrange(1, 600)
            )
            status = rng.choices(REQUEST_STATUSES, weights=REQUEST_WEIGHTS)[0]
            modified = created
            if status != "PendingStaffApproval":
                later = created + dt.timedelta(minutes=rng.randrange(1, 120))
                modified = max(created, min(later, anchor - dt.timedelta(seconds=1)))
            booking = shapes.appointment(
                booking_id=world.new_booking_id(),
                staff={"id": 0, "merchantId": merchant_id, "firstName": "", "lastName": ""},
                services=rng.sample(services, rng.choice((1, 1, 2))),
                start=start,
                client=rng.choice(clients),
                status=status,
                presence="Expecting",
                is_completed=False,
                created_on=created,
                created_by="Client",
                modified_on=modified,
                modified_by="Client",
                additional_request=rng.choice(names.REQUESTS),
            )
            world.put_booking(shapes.unassigned(booking))


def _id(row: Json) -> int:
    return int(row["id"])


def _merchant(rng: random.Random, index: int, anchor: dt.datetime) -> Json:
    city, zone, currency = names.STORES[index % len(names.STORES)]
    merchant_id = 34497 + index * 113 + rng.randrange(100)
    number = index // len(names.STORES)
    name = f"Maison {city}" + (f" {number + 1}" if number else "")
    return {
        "id": merchant_id,
        "name": name,
        "isAvailableOnline": True,
        "storeNumber": f"{100 + index}",
        "groupId": GROUP_ID,
        "groupName": "Maison Retail",
        "groupCategoryId": 1,
        "groupCategoryName": "Retail",
        "address": {
            "street": f"{rng.randrange(10, 999)} Main Street",
            "city": city,
            "state": "",
            "postalCode": "",
            "country": "",
        },
        "contactFirstName": rng.choice(names.FIRST_NAMES),
        "contactLastName": rng.choice(names.LAST_NAMES),
        "phoneNumber": f"+1514555{rng.randrange(10000):04d}",
        "email": f"store{index + 1}@maison.example.org",
        "tags": [],
        "websiteUrl": "https://maison.example.org",
        "bookingUrl": f"https://maison.example.org/book/{merchant_id}",
        "currency": currency,
        "timeZone": zone,
        "defaultLanguage": "en",
        "createdOn": fmt(anchor - dt.timedelta(days=400)),
    }


def _catalogue(world: World, merchant: Json, anchor: dt.datetime) -> None:
    created = fmt(anchor - dt.timedelta(days=300))
    base = merchant["id"] * 10
    for c_index, (category_name, services) in enumerate(names.CATALOGUE):
        category_id = base + c_index
        world.categories[category_id] = {
            "id": category_id,
            "name": category_name,
            "description": "",
            "profileImageUrl": "",
            "merchantId": merchant["id"],
            "isTemplate": False,
            "serviceCategoryTemplateId": None,
        }
        for s_index, (service_name, minutes, amount) in enumerate(services):
            _service(
                world,
                merchant,
                base * 10 + c_index * 10 + s_index,
                service_name,
                minutes,
                amount,
                category_id,
                category_name,
                "Appointment",
                created,
            )
    category_id = base + len(names.CATALOGUE)
    world.categories[category_id] = {
        "id": category_id,
        "name": "Events",
        "description": "",
        "profileImageUrl": "",
        "merchantId": merchant["id"],
        "isTemplate": False,
        "serviceCategoryTemplateId": None,
    }
    for s_index, (service_name, minutes, amount) in enumerate(names.GROUP_SERVICES):
        _service(
            world,
            merchant,
            base * 10 + 90 + s_index,
            service_name,
            minutes,
            amount,
            category_id,
            "Events",
            "GroupReservation",
            created,
        )


def _service(
    world: World,
    merchant: Json,
    service_id: int,
    name: str,
    minutes: int,
    amount: str,
    category_id: int,
    category_name: str,
    method: str,
    created: str,
) -> None:
    world.services[service_id] = {
        "id": service_id,
        "merchantId": merchant["id"],
        "name": name,
        "tags": [],
        "duration": minutes,
        "showDuration": True,
        "hasDurationCustomization": False,
        "bookingMethod": method,
        "location": "Business",
        "locationText": "",
        "price": shapes.price(amount, merchant["currency"]),
        "hasPriceCustomization": False,
        "categoryId": category_id,
        "categoryName": category_name,
        "description": "",
        "profileImageUrl": "",
        "staffSelectionMode": "AssignedStaff",
        "timeSelectionMode": "GroupEvent" if method == "GroupReservation" else "TimeSlot",
        "maxReservationSize": 4 if method == "GroupReservation" else 1,
        "metadata": {},
        "status": "Online",
        "isTemplate": False,
        "createdOn": created,
        "modifiedOn": created,
        "spacingAfter": 0,
        "isBusySpacingAfter": True,
    }


def _staff(rng: random.Random, world: World, merchant: Json, anchor: dt.datetime) -> Json:
    staff_id = 21000 + len(world.staff) * 37 + rng.randrange(30)
    first, last = rng.choice(names.FIRST_NAMES), rng.choice(names.LAST_NAMES)
    login = f"{first}.{last}.{staff_id}@maison.example.org".lower()
    created = fmt(anchor - dt.timedelta(days=rng.randrange(60, 400)))
    return {
        "id": staff_id,
        "merchantId": merchant["id"],
        "name": f"{first} {last}",
        "firstName": first,
        "lastName": last,
        "position": rng.choice(names.POSITIONS),
        "biography": "",
        "profileImageUrl": "",
        "timeSelectionMode": "ServiceTimeSelection",
        "mobilePhone": "",
        "workPhone": merchant["phoneNumber"],
        "communicationEmail": login,
        "loginEmail": login,
        "userRole": "Staff",
        "invitationStatus": "Accepted",
        "language": "en",
        "personnelType": "User",
        "status": "Online",
        "createdOn": created,
        "modifiedOn": created,
    }


def _client(rng: random.Random, world: World, merchant_id: int, anchor: dt.datetime) -> Json:
    client_id = world.counters.take("client")
    first, last = rng.choice(names.FIRST_NAMES), rng.choice(names.LAST_NAMES)
    created = anchor - dt.timedelta(days=rng.randrange(40, 700), seconds=rng.randrange(86400))
    client: Json = {
        "id": client_id,
        "membershipNumber": "",
        "merchantId": merchant_id,
        "firstName": first,
        "lastName": last,
        "language": "en",
        "email": f"{first}.{last}.{client_id}@example.org".lower(),
        "homePhoneNumber": f"+1438555{rng.randrange(10000):04d}" if rng.random() < 0.4 else "",
        "mobilePhoneNumber": f"+1514555{rng.randrange(10000):04d}",
        "remindBySMS": rng.random() < 0.5,
        "remindByEmail": True,
        "inMailingList": rng.random() < 0.3,
        "dateOfBirth": {
            "day": rng.randrange(1, 29),
            "month": rng.randrange(1, 13),
            "year": rng.randrange(1950, 2005),
        },
        "address": {
            "street": f"{rng.randrange(1, 9999)} {rng.choice(names.LAST_NAMES)} Ave",
            "city": "",
            "state": "",
            "postalCode": "",
            "country": "",
        },
        "gender": rng.choice(("Unknown", "Female", "Male", "Other")),
        "status": "Active",
        "quickNote": rng.choice(names.NOTES),
        "createdOn": fmt(created),
        "modifiedOn": fmt(created),
        "metadata": {},
    }
    world.clients[client_id] = client
    if rng.random() < 0.7:
        world.links[(client_id, MODULE_ID)] = {
            "clientId": client_id,
            "moduleId": MODULE_ID,
            "externalId": f"CUSTOMER-{client_id}",
            "metadata": {"loyaltyTier": rng.choice(("member", "silver", "gold"))},
            "createdOn": fmt(created),
            "modifiedOn": fmt(created),
        }
    return client


def _schedule(
    rng: random.Random, world: World, settings: SimSettings, member: Json, clients: list[Json]
) -> None:
    merchant = world.merchants[member["merchantId"]]
    zone = ZoneInfo(merchant["timeZone"])
    services = [
        s
        for s in world.services.values()
        if s["merchantId"] == merchant["id"] and s["bookingMethod"] == "Appointment"
    ]
    group_services = [
        s
        for s in world.services.values()
        if s["merchantId"] == merchant["id"] and s["bookingMethod"] != "Appointment"
    ]
    first_day = (settings.anchor - dt.timedelta(days=settings.days_before)).date()
    for offset in range(settings.days_before + settings.days_after + 1):
        day = first_day + dt.timedelta(days=offset)
        if day.weekday() == 6:  # closed on Sundays
            continue
        opens = dt.datetime.combine(day, dt.time(9), zone).astimezone(dt.UTC)
        closes = dt.datetime.combine(day, dt.time(18), zone).astimezone(dt.UTC)
        cursor = opens + dt.timedelta(minutes=30 * rng.randrange(0, 3))
        while cursor < closes:
            roll = rng.random()
            if roll < 0.02 and group_services:
                cursor = _group_event(
                    rng,
                    world,
                    settings,
                    member,
                    rng.choice(group_services),
                    cursor,
                    closes,
                    clients,
                )
            elif roll < 0.10:
                cursor = _time_slot(rng, world, member, cursor, closes)
            else:
                count = 1 if rng.random() < 0.8 else rng.randrange(2, 4)
                picked = rng.sample(services, min(count, len(services)))
                minutes = sum(s["duration"] for s in picked)
                if cursor + dt.timedelta(minutes=minutes) > closes:
                    break
                _appointment(rng, world, settings, member, picked, cursor, rng.choice(clients))
                cursor += dt.timedelta(minutes=minutes)
            cursor += dt.timedelta(minutes=30 * rng.randrange(0, 4))


def _appointment(
    rng: random.Random,
    world: World,
    settings: SimSettings,
    member: Json,
    services: list[Json],
    start: dt.datetime,
    client: Json,
) -> None:
    anchor = settings.anchor
    past = start < anchor
    status = rng.choices(
        ("Approved", "PendingStaffApproval", "PendingClientApproval", "Cancelled"),
        weights=(85, 4, 3, 8),
    )[0]
    presence, completed = "Expecting", False
    if past and status == "Approved":
        presence, completed = rng.choices(
            (("Arrived", True), ("NoShow", False), ("Arrived", False), ("Expecting", False)),
            weights=(70, 10, 5, 15),
        )[0]
    latest = min(start, anchor) - dt.timedelta(hours=1)
    created = latest - dt.timedelta(days=rng.randrange(0, 20), minutes=rng.randrange(600))
    modified = created + dt.timedelta(seconds=rng.randrange(1, 60))
    if past and (completed or presence != "Expecting"):
        modified = start + dt.timedelta(minutes=rng.randrange(30, 240))
        modified = min(modified, anchor - dt.timedelta(seconds=1))
    elif status != "Approved":
        modified = max(
            modified,
            min(
                anchor - dt.timedelta(seconds=1), created + dt.timedelta(hours=rng.randrange(1, 72))
            ),
        )
    by = rng.choice(("Client", "Staff"))
    booking = shapes.appointment(
        booking_id=world.new_booking_id(),
        staff=member,
        services=services,
        start=start,
        client=client,
        status=status,
        presence=presence,
        is_completed=completed,
        created_on=created,
        created_by=by,
        modified_on=modified,
        modified_by="Staff" if modified != created else by,
        additional_request=rng.choice(names.REQUESTS),
        quick_note=rng.choice(names.NOTES),
    )
    world.put_booking(booking)


def _group_event(
    rng: random.Random,
    world: World,
    settings: SimSettings,
    member: Json,
    service: Json,
    start: dt.datetime,
    closes: dt.datetime,
    clients: list[Json],
) -> dt.datetime:
    minutes = service["duration"]
    if start + dt.timedelta(minutes=minutes) > closes:
        return closes
    event_id = world.counters.take("group_event")
    capacity = rng.randrange(4, 13)
    created = min(start, settings.anchor) - dt.timedelta(days=rng.randrange(7, 40))
    event: Json = {
        "id": event_id,
        "merchantId": member["merchantId"],
        "start": fmt(start),
        "duration": minutes,
        "price": dict(service["price"]),
        "location": "Business",
        "locationText": "",
        "staffId": member["id"],
        "staffName": member["name"],
        "staffFirstName": member["firstName"],
        "staffLastName": member["lastName"],
        "serviceId": service["id"],
        "serviceName": service["name"],
        "serviceCategoryId": service["categoryId"],
        "serviceCategoryName": service["categoryName"],
        "attendeeCount": 0,
        "attendeeCapacity": capacity,
        "isCompleted": start < settings.anchor,
        "onlineBookingAllowedFrom": fmt(created),
        "onlineBookingAllowedUntil": fmt(start),
        "createdOn": fmt(created),
        "metadata": {},
    }
    world.add_group_event(event)
    for client in rng.sample(clients, min(len(clients), rng.randrange(0, capacity + 1))):
        status = "Cancelled" if rng.random() < 0.1 else "Approved"
        presence = "Expecting"
        if start < settings.anchor and status == "Approved":
            presence = rng.choice(("Arrived", "Arrived", "NoShow"))
        booked = created + dt.timedelta(hours=rng.randrange(1, 24 * 6))
        booking = shapes.reservation(
            booking_id=world.new_booking_id(),
            event=event,
            service=service,
            client=client,
            status=status,
            presence=presence,
            created_on=booked,
            created_by="Client",
        )
        world.put_booking(booking)
        if status != "Cancelled":
            event["attendeeCount"] += 1
    return start + dt.timedelta(minutes=minutes)


def _time_slot(
    rng: random.Random, world: World, member: Json, start: dt.datetime, closes: dt.datetime
) -> dt.datetime:
    minutes = rng.choice((30, 60))
    end = min(start + dt.timedelta(minutes=minutes), closes)
    slot_id = world.counters.take("time_slot")
    kind = rng.choice(("Busy", "Busy", "Available"))
    world.add_time_slot(
        {
            "id": slot_id,
            "merchantId": member["merchantId"],
            "staffId": member["id"],
            "type": kind,
            "start": fmt(start),
            "end": fmt(end),
            "availabilityTags": "",
            "ownerType": "Staff",
            "canModify": True,
            "description": "Lunch" if kind == "Busy" else "Walk-ins welcome",
            "label": "",
        }
    )
    return end
