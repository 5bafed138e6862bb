"""Booxi's query-string rules on the mirror's read routes (400 in Booxi's shape).

Repeated enum parameters (``eventType=A&eventType=B``), RFC 3339 instants, integer ids,
and cursors that must come alone: the same rules as Booxi's, so a frontend sees the
same answers from the mirror as from Booxi.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from api.booxi_shape import bad_request
from mirror.vocabulary import parse_id
from storage.times import parse_instant

MAX_ID = 2**53
_DIGITS = re.compile(r"[0-9]{1,16}")


class Query:
    def __init__(self, query: MultiMapping[str]) -> None:
        self._query = query

    def has_cursor(self) -> bool:
        return "cursor" in self._query

    def cursor(self, kind: str) -> tuple[dict[str, Any], list[Any]]:
        """The saved query and position of a follow-up request (which must carry nothing else)."""
        others = sorted({name for name in self._query if name != "cursor"})
        if others:
            raise bad_request(f"cursor must be sent alone; remove {', '.join(others)}")
        return decode_cursor(kind, self._query.get("cursor", ""))

    def text(self, name: str, *, required: bool = False) -> str | None:
        values = self._query.getall(name, [])
        if len(values) > 1:
            raise bad_request(f"{name} may be given only once")
        value = values[0] if values else None
        if required and (value is None or not value.strip()):
            raise bad_request(f"{name} is required")
        return value

    def integer(self, name: str, *, required: bool = False, minimum: int = 1) -> int | None:
        raw = self.text(name, required=required)
        if raw is None:
            return None
        if not _DIGITS.fullmatch(raw):
            raise bad_request(f"{name} must be an integer, got {raw!r}")
        value = int(raw)
        if not minimum <= value < MAX_ID:
            raise bad_request(f"{name} must be an integer of at least {minimum}, got {raw!r}")
        return value

    def instant(self, name: str, *, required: bool = False) -> dt.datetime | None:
        raw = self.text(name, required=required)
        if raw is None:
            return None
        try:
            return parse_instant(raw)
        except ValueError:
            raise bad_request(
                f"{name} must be an RFC 3339 date-time such as 2024-11-22T15:00:00Z, got {raw!r}"
            ) from None

    def required_instant(self, name: str) -> dt.datetime:
        value = self.instant(name, required=True)
        if value is None:  # pragma: no cover - instant() raised already
            raise bad_request(f"{name} is required")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        if raw not in allowed:
            raise bad_request(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return raw

    def choices(self, name: str, allowed: tuple[str, ...], *, required: bool = False) -> list[str]:
        values: list[str] = []
        for raw in self._query.getall(name, []):
            for part in raw.split(","):
                part = part.strip()
                if part not in allowed:
                    raise bad_request(f"{name} must be one of {', '.join(allowed)}, got {part!r}")
                if part not in values:
                    values.append(part)
        if required and not values:
            raise bad_request(
                f"{name} is required (repeat it for each value: {', '.join(allowed)})"
            )
        return values


def encode_cursor(kind: str, query: dict[str, Any], after: list[Any]) -> str:
    raw = json.dumps({"kind": kind, "q": query, "after": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, token: str) -> tuple[dict[str, Any], list[Any]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["kind"] != kind or not isinstance(data["q"], dict):
            raise ValueError(kind)
        if not isinstance(data["after"], list):
            raise ValueError(kind)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise bad_request("cursor is not valid for this endpoint") from None
    return data["q"], data["after"]


def path_id(request: web.Request, name: str) -> int:
    """An integer id from the path (``/client/{clientId}``...); 400 unless one."""
    try:
        return parse_id(name, request.match_info[name])
    except ValueError as error:
        raise bad_request(str(error)) from None
