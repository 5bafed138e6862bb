"""RFC 3339 on the wire, timezone-aware UTC in Python."""

from __future__ import annotations

import datetime as dt
import re

EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def parse_rfc3339(value: str) -> dt.datetime:
    """Parse a full RFC 3339 date-time (offset required) into an aware UTC datetime.

    Raises ``ValueError`` for anything else: a bare date, a missing offset, a
    non-existent day.
    """
    if not _RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    text = value.upper()
    if "." in text:  # fromisoformat takes at most 6 fraction digits
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"out of range: {value!r}") from None
    if not EARLIEST <= moment < LATEST:  # **choice**: Booxi's range is not public
        raise ValueError(f"out of range (1970 to 2199): {value!r}")
    return moment


def fmt(moment: dt.datetime) -> str:
    """Booxi's wire form: UTC, whole seconds, ``Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
