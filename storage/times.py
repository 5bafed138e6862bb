"""Instants: Booxi's RFC 3339 strings as sortable keys, and our own aware UTC timestamps."""

from __future__ import annotations

import datetime as dt
import re

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_instant(value: str) -> dt.datetime:
    """An RFC 3339 date-time (offset required) as an aware UTC datetime; else ValueError."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    text = value.upper().replace(" ", "T")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def instant_key(value: dt.datetime | str) -> str:
    """The sortable text form stored in indexed columns: UTC, microseconds, ``Z``.

    Booxi sends whole seconds in ``Z`` form, but offsets or fractions are not ruled out;
    one fixed-width form keeps string order equal to time order in every database.
    """
    moment = parse_instant(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a timezone-aware one")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stored_utc(value: object) -> dt.datetime:
    """One of our ``_at`` columns as read with plain ``sqlite3`` (naive UTC text)."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        moment = dt.datetime.fromisoformat(value)
    else:
        raise ValueError(f"not a stored timestamp: {value!r}")
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def wire_instant(key: str) -> str:
    """A stored instant key in Booxi's wire form (UTC, whole seconds, ``Z``)."""
    return parse_instant(key).strftime("%Y-%m-%dT%H:%M:%SZ")
