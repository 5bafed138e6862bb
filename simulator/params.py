"""Query-string rules of Booxi: typed, repeated and cursor-only parameters.

**choice**: unknown query parameters are ignored (as most Swagger-generated servers
do), except next to a ``cursor``, which must come alone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from multidict import MultiMapping

from simulator.errors import bad_request
from simulator.timeutil import parse_rfc3339

MAX_INT = 2**53


class Query:
    """Reads one request's query string, raising Booxi's 400 for anything malformed."""

    def __init__(self, query: MultiMapping[str]) -> None:
        self._query = query

    def __contains__(self, name: str) -> bool:
        return name in self._query

    def has_cursor(self) -> bool:
        return "cursor" in self._query

    def cursor_only(self) -> str:
        """The cursor of a follow-up request, which must carry no other parameter."""
        others = sorted({name for name in self._query if name != "cursor"})
        if others:
            raise bad_request(
                "cursor must be sent alone: the cursor carries the original query; "
                f"remove {', '.join(others)}"
            )
        return self.text("cursor", required=True) or ""

    def text(self, name: str, *, required: bool = False) -> str | None:
        values = self._query.getall(name, [])
        if not values:
            if required:
                raise bad_request(f"{name} is required")
            return None
        if len(values) > 1:
            raise bad_request(f"{name} may be given only once")
        value = values[0]
        if required and not value.strip():
            raise bad_request(f"{name} is required")
        return value

    def integer(self, name: str, *, required: bool = False, minimum: int = 1) -> int | None:
        raw = self.text(name, required=required)
        if raw is None:
            return None
        try:
            value = int(raw, 10)
        except ValueError:
            raise bad_request(f"{name} must be an integer, got {raw!r}") from None
        if not minimum <= value < MAX_INT:
            raise bad_request(f"{name} must be an integer of at least {minimum}, got {raw!r}")
        return value

    def required_integer(self, name: str, *, minimum: int = 1) -> int:
        value = self.integer(name, required=True, minimum=minimum)
        assert value is not None  # required=True raised otherwise
        return value

    def time(self, name: str, *, required: bool = False) -> dt.datetime | None:
        raw = self.text(name, required=required)
        if raw is None:
            return None
        try:
            return parse_rfc3339(raw)
        except ValueError:
            raise bad_request(
                f"{name} must be an RFC 3339 date-time such as 2024-11-22T15:00:00Z, got {raw!r}"
            ) from None

    def required_time(self, name: str) -> dt.datetime:
        value = self.time(name, required=True)
        assert value is not None
        return value

    def choice(self, name: str, allowed: Iterable[str], *, default: str) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        return _check_enum(name, raw, tuple(allowed))

    def choices(self, name: str, allowed: Iterable[str], *, required: bool = False) -> list[str]:
        """A repeated enum parameter (``eventType=A&eventType=B``), de-duplicated, in order."""
        allowed = tuple(allowed)
        values: list[str] = []
        for raw in self._query.getall(name, []):
            for part in raw.split(","):  # tolerate the comma form some clients send
                value = _check_enum(name, part.strip(), allowed)
                if value not in values:
                    values.append(value)
        if required and not values:
            raise bad_request(
                f"{name} is required (repeat it for each value: {', '.join(allowed)})"
            )
        return values


def _check_enum(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise bad_request(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


_PATH_ID = re.compile(r"[0-9]{1,16}")
MAX_ID = 2**53


def path_id(name: str, raw: str) -> int:
    """An integer id from a path segment: ASCII digits, 1 to 2^53 - 1 (400 otherwise;
    ``str.isdigit`` would let "²" through to ``int``)."""
    if not _PATH_ID.fullmatch(raw) or not 0 < int(raw) < MAX_ID:
        raise bad_request(f"{name} must be an integer, got {raw!r}")
    return int(raw)
