"""Instants: Booxi's RFC 3339 strings as sortable keys, and our own aware UTC timestamps."""

from __future__ import annotations

import datetime as dt
import re

# ASCII digits only (``\d`` would take "٢" and other digits); ``\Z``, not ``$``, which
# would let a trailing newline through
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII
)
# what Booxi sends: whole seconds in UTC; its key is the text and six zeros
_WHOLE_SECONDS_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z", re.ASCII)
# the instants the mirror accepts from anyone (its callers, Booxi): **choice**, wide
# enough for any booking, narrow enough that every one has a 4-digit UTC year and that
# no offset can carry it outside what ``datetime`` holds
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)


def parse_instant(value: str) -> dt.datetime:
    """An RFC 3339 date-time (offset required) as an aware UTC datetime, from 1970-01-01
    to 2199-12-31 in UTC (once its offset is applied); else ValueError."""
    moment = _parse(value)
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"date-time out of range (1970-01-01 to 2199-12-31 UTC): {value!r}")
    return moment


def _parse(value: str) -> dt.datetime:
    """An RFC 3339 date-time as an aware UTC datetime, any year; else ValueError."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    text = value.upper().replace(" ", "T")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:  # an offset can carry year 1 or 9999 out of what datetime holds
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"date-time out of range: {value!r}") from None


def instant_key(value: dt.datetime | str) -> str:
    """The sortable text form stored in indexed columns: UTC, microseconds, ``Z``.

    Booxi sends whole seconds in ``Z`` form, but offsets or fractions are not ruled out;
    one fixed-width form keeps string order equal to time order in every database.
    Text goes through ``parse_instant`` (its range); a datetime of ours is taken as it is.
    The year is always written with 4 digits (``strftime("%Y")`` does not pad years
    below 1000 on every platform).
    """
    if isinstance(value, str) and _WHOLE_SECONDS_Z.match(value):  # Booxi's own form
        naive = dt.datetime.fromisoformat(value[:19])  # ValueError for a bad date or time
        if EARLIEST.year <= naive.year <= LATEST.year:
            return value[:19] + ".000000Z"
    moment = parse_instant(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a timezone-aware one")
    try:
        moment = moment.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"date-time out of range: {value!r}") from None
    return f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S.%fZ")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def is_stale(synced_at: dt.datetime, staleness_s: float, now: dt.datetime) -> bool:
    """The staleness rule, one place for the read API's headers, ``/readyz``, the client
    search's reuse and ``booxi-mirror status``: synced more than ``[api] staleness_s``
    ago."""
    return (now - synced_at).total_seconds() > staleness_s


def stored_utc(value: object) -> dt.datetime:
    """One of our ``_at`` columns as a read function gets it: naive UTC text (SQLite) or
    an aware datetime (PostgreSQL)."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        moment = dt.datetime.fromisoformat(value)
    else:
        raise ValueError(f"not a stored timestamp: {value!r}")
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def wire_instant(key: str) -> str:
    """A stored instant key in Booxi's wire form (UTC, whole seconds, ``Z``)."""
    moment = _parse(key)
    return f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%SZ")
