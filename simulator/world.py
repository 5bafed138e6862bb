"""The simulator's ground truth: every Booxi object as Booxi's JSON, plus indexes.

Objects are kept exactly in the shape the API serves, so handlers only select and
page. Choices where Booxi's behaviour is not public:

- A calendar event is returned for a query when it overlaps ``[from, to]``, both ends
  inclusive (an event ending exactly at ``from`` is returned).
- Cancelled bookings leave the calendar (they no longer hold the staff member's time)
  but stay visible through ``GET /booking`` and ``GET /booking/{id}``.
- Calendar event ids are stable: one per (booking, service item), per group event
  and per time slot; an item added later gets a new id.
- ``modifiedOn`` has whole-second resolution and strictly increases for each booking
  (a second change within the same second is stamped one second later), so "newer"
  is always decidable from ``modifiedOn`` alone.
- Module links exist for clients (``links``), staff (``staff_links``, module ``hr``)
  and services (``service_links``, module ``pos``), keyed by (object id, module id).
- ``service_staff`` says which staff members perform a service; it shapes the Book
  Now lists only (bookings are not checked against it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from simulator import shapes
from simulator.timeutil import fmt, parse_rfc3339, utcnow

Json = dict[str, Any]
ChangeListener = Callable[[str, Json], None]

EVENT_TYPES = ("Appointment", "GroupEvent", "TimeSlot")
INCLUDES = ("None", "Appointment", "GroupEvent", "TimeSlot", "Staff", "Service")
BOOKING_METHODS = ("Appointment", "GroupReservation", "Rental")
STATUSES = ("PendingStaffApproval", "PendingClientApproval", "Approved", "Cancelled")
PRESENCES = ("Expecting", "Arrived", "NoShow")


@dataclasses.dataclass
class Counters:
    booking: int = 10021000
    client: int = 9278000
    calendar_event: int = 13560000
    group_event: int = 5100000
    time_slot: int = 7700000

    def take(self, name: str) -> int:
        value: int = getattr(self, name) + 1
        setattr(self, name, value)
        return value


@dataclasses.dataclass
class World:
    """All objects of one simulated Booxi account, keyed by id."""

    merchants: dict[int, Json] = dataclasses.field(default_factory=dict)
    staff: dict[int, Json] = dataclasses.field(default_factory=dict)
    categories: dict[int, Json] = dataclasses.field(default_factory=dict)
    services: dict[int, Json] = dataclasses.field(default_factory=dict)
    clients: dict[int, Json] = dataclasses.field(default_factory=dict)
    links: dict[tuple[int, str], Json] = dataclasses.field(default_factory=dict)
    staff_links: dict[tuple[int, str], Json] = dataclasses.field(default_factory=dict)
    service_links: dict[tuple[int, str], Json] = dataclasses.field(default_factory=dict)
    service_staff: dict[int, list[int]] = dataclasses.field(default_factory=dict)
    bookings: dict[str, Json] = dataclasses.field(default_factory=dict)
    group_events: dict[int, Json] = dataclasses.field(default_factory=dict)
    time_slots: dict[int, Json] = dataclasses.field(default_factory=dict)
    counters: Counters = dataclasses.field(default_factory=Counters)
    clock: Callable[[], dt.datetime] = utcnow
    listeners: list[ChangeListener] = dataclasses.field(default_factory=list)
    _event_ids: dict[str, int] = dataclasses.field(default_factory=dict)
    _by_staff: dict[int, dict[str, None]] = dataclasses.field(default_factory=dict)
    _by_client: dict[int, dict[str, None]] = dataclasses.field(default_factory=dict)
    _group_events_by_staff: dict[int, list[Json]] = dataclasses.field(default_factory=dict)
    _slots_by_staff: dict[int, list[Json]] = dataclasses.field(default_factory=dict)
    _reservations: dict[int, dict[str, None]] = dataclasses.field(default_factory=dict)

    # ---- ids -------------------------------------------------------------------
    def new_booking_id(self) -> str:
        return f"A{self.counters.take('booking')}"

    def event_id(self, key: str) -> int:
        """The stable calendar event id for ``key`` (``A:<bookingId>:<item>``, ``G:<id>``...)."""
        if key not in self._event_ids:
            self._event_ids[key] = self.counters.take("calendar_event")
        return self._event_ids[key]

    # ---- bookings --------------------------------------------------------------
    def put_booking(self, booking: Json) -> None:
        """Store (or replace) a booking and keep the staff and client indexes right."""
        booking_id = booking["bookingId"]
        old = self.bookings.get(booking_id)
        if old is not None:
            self._by_staff.get(old["staffId"], {}).pop(booking_id, None)
            if old.get("client", {}).get("id") is not None:
                self._by_client.get(old["client"]["id"], {}).pop(booking_id, None)
        self.bookings[booking_id] = booking
        self._by_staff.setdefault(booking["staffId"], {})[booking_id] = None
        client_id = booking.get("client", {}).get("id")
        if client_id is not None:
            self._by_client.setdefault(client_id, {})[booking_id] = None
        if booking["bookingMethod"] == "Appointment":
            for index in range(len(booking["items"])):
                self.event_id(f"A:{booking_id}:{index}")
        if booking.get("groupEventId") is not None:
            self._reservations.setdefault(booking["groupEventId"], {})[booking_id] = None

    def add_group_event(self, event: Json) -> None:
        self.group_events[event["id"]] = event
        self._group_events_by_staff.setdefault(event["staffId"], []).append(event)

    def add_time_slot(self, slot: Json) -> None:
        self.time_slots[slot["id"]] = slot
        self._slots_by_staff.setdefault(slot["staffId"], []).append(slot)

    def bookings_of_staff(self, staff_id: int) -> Iterator[Json]:
        for booking_id in self._by_staff.get(staff_id, {}):
            yield self.bookings[booking_id]

    def bookings_of_client(self, client_id: int) -> Iterator[Json]:
        for booking_id in self._by_client.get(client_id, {}):
            yield self.bookings[booking_id]

    def touch(self, booking: Json, *, by: str = "Staff", staff_id: int | None = None) -> None:
        """Stamp a change: ``modifiedOn`` strictly later than before, whole seconds."""
        now = self.clock().replace(microsecond=0)
        previous = parse_rfc3339(booking["modifiedOn"])
        booking["modifiedOn"] = fmt(max(now, previous + dt.timedelta(seconds=1)))
        booking["modifiedBy"] = by
        if staff_id is not None and by == "Staff":
            booking["modifiedByStaffId"] = staff_id
        else:
            booking.pop("modifiedByStaffId", None)
        shapes.in_field_order(booking)

    # ---- calendar --------------------------------------------------------------
    def calendar_events(
        self, staff_id: int, start: dt.datetime, end: dt.datetime, types: set[str]
    ) -> list[Json]:
        """Calendar events of one staff member overlapping ``[start, end]``, by start then id."""
        lo, hi = fmt(start), fmt(end)
        found: list[Json] = []
        staff = self.staff[staff_id]
        base = {"merchantId": staff["merchantId"], "staffId": staff_id}
        if "Appointment" in types:
            for booking in self.bookings_of_staff(staff_id):
                if booking["bookingMethod"] != "Appointment" or booking["status"] == "Cancelled":
                    continue
                for index, item in enumerate(booking["items"]):
                    span = item["reservedClientTimespan"]
                    if span["start"] <= hi and span["end"] >= lo:
                        key = f"A:{booking['bookingId']}:{index}"
                        found.append(
                            {
                                "id": self.event_id(key),
                                **base,
                                "start": span["start"],
                                "end": span["end"],
                                "type": "Appointment",
                                "bookingId": booking["bookingId"],
                            }
                        )
        if "GroupEvent" in types:
            for event in self._group_events_by_staff.get(staff_id, []):
                ends = group_event_end(event)
                if event["start"] <= hi and ends >= lo:
                    found.append(
                        {
                            "id": self.event_id(f"G:{event['id']}"),
                            **base,
                            "start": event["start"],
                            "end": ends,
                            "type": "GroupEvent",
                            "groupEventId": event["id"],
                        }
                    )
        if "TimeSlot" in types:
            for slot in self._slots_by_staff.get(staff_id, []):
                if slot["start"] <= hi and slot["end"] >= lo:
                    found.append(
                        {
                            "id": self.event_id(f"T:{slot['id']}"),
                            **base,
                            "start": slot["start"],
                            "end": slot["end"],
                            "type": "TimeSlot",
                            "timeSlotId": slot["id"],
                        }
                    )
        found.sort(key=lambda event: (event["start"], event["id"]))
        return found

    def reservations_of(self, group_event_id: int) -> list[Json]:
        found = (self.bookings[i] for i in self._reservations.get(group_event_id, {}))
        return [booking for booking in found if booking["status"] != "Cancelled"]

    def conflict_for(
        self, staff_id: int, start: str, end: str, *, ignore: str | None = None
    ) -> str | None:
        """Booxi's conflict name if the staff member is busy at any time in ``[start, end)``."""
        for booking in self.bookings_of_staff(staff_id):
            if booking["bookingId"] == ignore or booking["status"] == "Cancelled":
                continue
            if booking["bookingMethod"] != "Appointment":
                continue
            span = booking["totalClientTimespan"]
            if span["start"] < end and span["end"] > start:
                return "BookingConflict"
        for event in self._group_events_by_staff.get(staff_id, []):
            if event["start"] < end and group_event_end(event) > start:
                return "ScheduleConflict"
        for slot in self._slots_by_staff.get(staff_id, []):
            if slot["type"] == "Busy" and slot["start"] < end and slot["end"] > start:
                return "TimeSlotConflict"
        return None

    # ---- clients ---------------------------------------------------------------
    def links_of(self, client_id: int) -> list[Json]:
        return [link for (cid, _), link in self.links.items() if cid == client_id]

    # ---- change notification ---------------------------------------------------
    def emit(self, event_type: str, content: Json) -> None:
        for listener in self.listeners:
            listener(event_type, content)

    def emit_booking(self, booking: Json, created: bool) -> None:
        family = "appointment" if booking["bookingMethod"] == "Appointment" else "reservation"
        client_id = booking.get("client", {}).get("id")
        links = self.links_of(client_id) if client_id is not None else []
        self.emit(
            f"{family}.{'created' if created else 'updated'}",
            {"booking": booking, "clientLinks": links},
        )

    # ---- ground truth ----------------------------------------------------------
    def state(self) -> Json:
        return {
            "merchants": list(self.merchants.values()),
            "staff": list(self.staff.values()),
            "services": list(self.services.values()),
            "serviceCategories": list(self.categories.values()),
            "clients": list(self.clients.values()),
            "clientLinks": list(self.links.values()),
            "staffLinks": list(self.staff_links.values()),
            "serviceLinks": list(self.service_links.values()),
            "serviceStaff": {str(k): list(v) for k, v in self.service_staff.items()},
            "bookings": sorted(self.bookings.values(), key=lambda b: b["bookingId"]),
            "groupEvents": list(self.group_events.values()),
            "timeSlots": list(self.time_slots.values()),
        }


def group_event_end(event: Json) -> str:
    return fmt(parse_rfc3339(event["start"]) + dt.timedelta(minutes=event["duration"]))
