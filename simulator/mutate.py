"""Random, realistic changes for ``POST /_sim/mutate``, made through the same operations
as the API (so each one is validated, stamped and sent as a webhook).

Kinds, by weight: new appointments (25), reschedules within a week (20),
reassignments to another staff member of the store (15; a request no one has taken is
assigned to a free staff member and approved, as a manager dispatching it would),
cancellations (15), presence changes on today's and the past week's appointments (15),
new group reservations (10), new appointment requests with no staff member (10:
``PendingStaffApproval``, what a store's dispatch queue holds).
Changes fall in ``[now - 7 days, now + 60 days]``, where a mirror polls.
"""

from __future__ import annotations

import datetime as dt
import random

from simulator import operations
from simulator.availability import free_starts
from simulator.errors import BooxiError
from simulator.timeutil import fmt, parse_rfc3339
from simulator.world import Json, World

KINDS = ("create", "reschedule", "reassign", "cancel", "presence", "reserve", "request")
WEIGHTS = (25, 20, 15, 15, 15, 10, 10)
PAST = dt.timedelta(days=7)
AHEAD = dt.timedelta(days=60)


def mutate(world: World, count: int, seed: int | None) -> list[str]:
    """Apply ``count`` changes; the ids of the bookings changed, in order, once each."""
    rng = random.Random(seed)
    now = world.clock()
    lo, hi = fmt(now - PAST), fmt(now + AHEAD)
    changed: dict[str, None] = {}
    attempts = 0
    while len(changed) < count and attempts < count * 20:
        attempts += 1
        kind = rng.choices(KINDS, weights=WEIGHTS)[0]
        try:
            booking_id = _apply(world, rng, kind, now, lo, hi)
        except BooxiError:  # a conflict or a full group event: try something else
            continue
        if booking_id is not None:
            changed.pop(booking_id, None)
            changed[booking_id] = None
    return list(changed)


def _apply(
    world: World, rng: random.Random, kind: str, now: dt.datetime, lo: str, hi: str
) -> str | None:
    if kind == "create":
        return _create(world, rng, now)
    if kind == "reserve":
        return _reserve(world, rng, fmt(now))
    if kind == "request":
        return _request(world, rng, now)
    now_s = fmt(now)
    live = [
        b
        for b in world.bookings.values()
        if b["status"] != "Cancelled" and lo <= b["startsOn"] <= hi
    ]
    if kind == "cancel":
        future = [b for b in live if b["startsOn"] >= now_s]
        booking = _pick(rng, future)
        if booking is None:
            return None
        return _update(world, booking, {"status": "Cancelled"}, rng)
    appointments = [b for b in live if b["bookingMethod"] == "Appointment"]
    if kind == "presence":
        started = [b for b in appointments if b["startsOn"] <= now_s]
        booking = _pick(rng, started)
        if booking is None:
            return None
        arrived = rng.random() < 0.8
        return _update(
            world,
            booking,
            {
                "client": {"presence": "Arrived" if arrived else "NoShow"},
                "isCompleted": arrived and rng.random() < 0.8,
            },
            rng,
        )
    upcoming = [b for b in appointments if b["startsOn"] >= now_s]
    if kind == "reschedule":  # of an assigned appointment: a request has no one's time
        upcoming = [b for b in upcoming if b["staffId"] is not None]
    booking = _pick(rng, upcoming)
    if booking is None:
        return None
    minutes = booking["totalClientTimespan"]["duration"]
    start = parse_rfc3339(booking["startsOn"])
    end = fmt(start + dt.timedelta(minutes=minutes))
    if booking["staffId"] is None:  # dispatch: the first free staff member takes it
        store = sorted(
            (s for s in world.staff.values() if s["merchantId"] == booking["merchantId"]),
            key=lambda s: s["id"],
        )
        rng.shuffle(store)
        for member in store:
            if world.conflict_for(member["id"], booking["startsOn"], end) is None:
                return _update(world, booking, {"staffId": member["id"], "status": "Approved"}, rng)
        return None
    staff = world.staff[booking["staffId"]]
    if kind == "reschedule":
        day = start + dt.timedelta(days=rng.randrange(-3, 4))
        options = free_starts(
            world, staff, max(day.replace(hour=0), now), day.replace(hour=23), minutes, 30
        )
        if not options:
            return None
        return _update(world, booking, {"startsOn": fmt(rng.choice(options))}, rng)
    colleagues = [
        s
        for s in world.staff.values()
        if s["merchantId"] == staff["merchantId"] and s["id"] != staff["id"]
    ]
    rng.shuffle(colleagues)
    for colleague in colleagues:
        if world.conflict_for(colleague["id"], booking["startsOn"], end) is None:
            return _update(world, booking, {"staffId": colleague["id"]}, rng)
    return None


def _create(world: World, rng: random.Random, now: dt.datetime) -> str | None:
    staff = rng.choice(sorted(world.staff.values(), key=lambda s: s["id"]))
    services = [
        s
        for s in world.services.values()
        if s["merchantId"] == staff["merchantId"] and s["bookingMethod"] == "Appointment"
    ]
    clients = [c for c in world.clients.values() if c["merchantId"] == staff["merchantId"]]
    if not services or not clients:
        return None
    picked = rng.sample(services, rng.choice((1, 1, 1, 2)))
    day = now + dt.timedelta(days=rng.randrange(0, 30))
    options = free_starts(
        world,
        staff,
        max(day.replace(hour=0), now),
        day.replace(hour=23),
        sum(s["duration"] for s in picked),
        30,
    )
    if not options:
        return None
    booking = operations.create_booking(
        world,
        {
            "merchantId": staff["merchantId"],
            "bookingMethod": "Appointment",
            "startsOn": fmt(rng.choice(options)),
            "staffId": staff["id"],
            "items": [{"serviceId": s["id"]} for s in picked],
            "client": {"id": rng.choice(clients)["id"]},
            "createdBy": rng.choice(("Staff", "Client")),
        },
    )
    return str(booking["bookingId"])


def _request(world: World, rng: random.Random, now: dt.datetime) -> str | None:
    """A client asks for an appointment online without choosing a staff member."""
    merchant_id = rng.choice(sorted(world.merchants))
    services = sorted(
        (
            s
            for s in world.services.values()
            if s["merchantId"] == merchant_id and s["bookingMethod"] == "Appointment"
        ),
        key=lambda s: s["id"],
    )
    clients = sorted(
        (c for c in world.clients.values() if c["merchantId"] == merchant_id),
        key=lambda c: c["id"],
    )
    if not services or not clients:
        return None
    day = now + dt.timedelta(days=rng.randrange(1, 30), hours=rng.randrange(0, 10))
    start = day.replace(minute=rng.choice((0, 30)), second=0, microsecond=0)
    picked = rng.sample(services, rng.choice((1, 1, 2)))
    booking = operations.create_request(world, merchant_id, picked, start, rng.choice(clients))
    return str(booking["bookingId"])


def _reserve(world: World, rng: random.Random, now: str) -> str | None:
    events = [
        e
        for e in world.group_events.values()
        if e["start"] >= now and e["attendeeCount"] < e["attendeeCapacity"]
    ]
    event = _pick(rng, events, key="id")
    if event is None:
        return None
    clients = [c for c in world.clients.values() if c["merchantId"] == event["merchantId"]]
    if not clients:
        return None
    booking = operations.create_booking(
        world,
        {
            "merchantId": event["merchantId"],
            "bookingMethod": "GroupReservation",
            "groupEventId": event["id"],
            "client": {"id": rng.choice(clients)["id"]},
            "createdBy": "Client",
        },
    )
    return str(booking["bookingId"])


def _update(world: World, booking: Json, changes: Json, rng: random.Random) -> str | None:
    """Apply ``changes``; None when they changed nothing (the booking was so already)."""
    by = rng.choice(("Staff", "Staff", "Client"))
    before = booking["modifiedOn"]
    updated = operations.update_booking(world, booking["bookingId"], {**changes, "modifiedBy": by})
    return str(updated["bookingId"]) if updated["modifiedOn"] != before else None


def _pick(rng: random.Random, items: list[Json], key: str = "bookingId") -> Json | None:
    if not items:
        return None
    return rng.choice(sorted(items, key=lambda item: item[key]))
