"""Booxi's vocabulary, in one place: enumerations and id rules, each with one message.

Used by the Booxi client (``mirror.client``), the read and write routes (``api``), the
OpenAPI document and the CLI, so that a name or a limit is written once.

Choices where ``booxi-api.md`` is silent:

- Integer ids (merchant, staff, service, client...) are ASCII digits, 1 to 16 of them,
  from 1 to 2^53 - 1 (the largest integer a JavaScript client reads exactly).
  ``str.isdigit()`` is not used: it accepts "²" and other digits ``int()`` refuses.
- Booking ids are strings of 1 to 64 characters without ``/`` (Booxi's format, such as
  ``A10021380``, is not public); module ids 1 to 100 characters.
"""

from __future__ import annotations

import re

EVENT_TYPES = ("Appointment", "GroupEvent", "TimeSlot")
# what a calendar request may embed; "None" asks for the events alone
INCLUDES = ("None", "Appointment", "GroupEvent", "TimeSlot", "Staff", "Service")
INCLUDED_OBJECTS = INCLUDES[1:]
BOOKING_METHODS = ("Appointment", "GroupReservation", "Rental")
BOOKING_STATUSES = ("PendingStaffApproval", "PendingClientApproval", "Approved", "Cancelled")
PRESENCES = ("Expecting", "Arrived", "NoShow")
ORDERS = ("Ascending", "Descending")
ONLINE_STATUSES = ("Online", "Offline")

MAX_ID = 2**53
MAX_BOOKING_ID = 64
MAX_MODULE_ID = 100
_DIGITS = re.compile(r"[0-9]{1,16}")

ID_MESSAGE = "{name} must be a positive integer (ASCII digits, below 2^53)"
BOOKING_ID_MESSAGE = "{name} must be 1 to 64 characters without '/'"
MODULE_ID_MESSAGE = "{name} must be 1 to 100 characters without '/'"


def parse_id(name: str, raw: str) -> int:
    """An integer id from text (a path segment or a query value); ``ValueError`` with
    ``ID_MESSAGE`` otherwise."""
    if not isinstance(raw, str) or not _DIGITS.fullmatch(raw) or not 0 < int(raw) < MAX_ID:
        raise ValueError(ID_MESSAGE.format(name=name))
    return int(raw)


def is_id(value: object) -> bool:
    """Whether a JSON value is an integer id (not a bool, within range)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < MAX_ID


def check_booking_id(name: str, value: object) -> str:
    """A booking id as given; ``ValueError`` with ``BOOKING_ID_MESSAGE`` otherwise."""
    return _text_id(value, MAX_BOOKING_ID, BOOKING_ID_MESSAGE.format(name=name))


def check_module_id(name: str, value: object) -> str:
    """A module id as given; ``ValueError`` with ``MODULE_ID_MESSAGE`` otherwise."""
    return _text_id(value, MAX_MODULE_ID, MODULE_ID_MESSAGE.format(name=name))


def _text_id(value: object, max_length: int, message: str) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > max_length
        or "/" in value
        or value in (".", "..")
    ):
        raise ValueError(message)
    return value
