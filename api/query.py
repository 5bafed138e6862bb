"""Booxi's query-string rules on the mirror's read routes (400 in Booxi's shape).

Repeated enum parameters (``eventType=A&eventType=B``), RFC 3339 instants, integer ids,
and cursors that must come alone: the same rules as Booxi's, so a frontend sees the
same answers from the mirror as from Booxi.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from api.booxi_shape import bad_request
from mirror.vocabulary import BOOKING_METHODS, EVENT_TYPES, INCLUDES, is_id, parse_id
from storage.times import parse_instant

MAX_ID = 2**53
_DIGITS = re.compile(r"[0-9]{1,16}")


class Query:
    def __init__(self, query: MultiMapping[str]) -> None:
        self._query = query

    def has_cursor(self) -> bool:
        return "cursor" in self._query

    def cursor(self, request: web.Request, kind: str) -> tuple[dict[str, Any], list[Any]]:
        """The saved query and position of a follow-up request (which must carry nothing
        else, and one cursor)."""
        others = sorted({name for name in self._query if name != "cursor"})
        if others:
            raise bad_request(f"cursor must be sent alone; remove {', '.join(others)}")
        return decode_cursor(request, kind, self.text("cursor") or "")

    def text(self, name: str, *, required: bool = False) -> str | None:
        """A single-value parameter: 400 when it is repeated."""
        values = self._query.getall(name, [])
        if len(values) > 1:
            raise bad_request(f"{name} may be given only once")
        value = values[0] if values else None
        if value is not None and not _storable(value):
            raise bad_request(f"{name} holds a character that is not allowed")
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


CURSOR_KEY = web.AppKey("cursor_key", bytes)  # this database's key (storage.mirror_secret)
TAG_BYTES = 16
MAX_CURSOR = 16384
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]+")
INVALID_CURSOR = "cursor is not valid for this endpoint"


def cursor_key(request: web.Request) -> bytes:
    """The key that signs this mirror's cursors, loaded at start (``api.app``)."""
    return request.app[CURSOR_KEY]


def _tag(key: bytes, kind: str, payload: bytes) -> bytes:
    message = kind.encode() + b"\n" + payload
    return hmac.new(key, message, hashlib.sha256).digest()[:TAG_BYTES]


def encode_cursor(request: web.Request, kind: str, query: dict[str, Any], after: list[Any]) -> str:
    """An opaque cursor: the saved query and position, and an HMAC-SHA256 (truncated to
    16 bytes) of both and of the endpoint's kind, with this database's key."""
    payload = json.dumps({"q": query, "after": after}, separators=(",", ":")).encode()
    token = payload + _tag(cursor_key(request), kind, payload)
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_cursor(request: web.Request, kind: str, token: str) -> tuple[dict[str, Any], list[Any]]:
    """The saved query and position of a cursor this mirror made for ``kind``; 400 for
    anything else (tampered, truncated, another endpoint's or another database's),
    checked before anything of it is decoded, then its fields' types checked."""
    if not 0 < len(token) <= MAX_CURSOR or not _CURSOR_TEXT.fullmatch(token):
        raise bad_request(INVALID_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, binascii.Error):
        raise bad_request(INVALID_CURSOR) from None
    payload, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    canonical = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if (
        canonical != token
        or len(raw) <= TAG_BYTES
        or not hmac.compare_digest(tag, _tag(cursor_key(request), kind, payload))
    ):
        raise bad_request(INVALID_CURSOR)
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # pragma: no cover - signed: made by us
        raise bad_request(INVALID_CURSOR) from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("q"), dict)
        or not isinstance(data.get("after"), list)
        or not _CHECKS.get(kind, _listing)(data["q"], data["after"])
    ):
        raise bad_request(INVALID_CURSOR)
    return data["q"], data["after"]


# ---- what a decoded cursor may hold, per kind (a signed cursor is ours, but a leaked
# key or an old format must still give a 400, never a database error) ------------------
def _id(value: object) -> bool:
    return is_id(value)


def _optional_id(value: object) -> bool:
    return value is None or is_id(value)


def _event_id(value: object) -> bool:  # calendar event ids: provisional ones are negative
    return isinstance(value, int) and not isinstance(value, bool) and -MAX_ID < value < MAX_ID


def _text(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 1000 and _storable(value)


def _key(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_instant(value)
    except ValueError:
        return False
    return True


def _optional_key(value: object) -> bool:
    return value is None or _key(value)


def _names(allowed: tuple[str, ...]) -> Any:
    def check(value: object) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) and v in allowed for v in value)

    return check


def _shaped(q: dict[str, Any], fields: dict[str, Any]) -> bool:
    return set(q) == set(fields) and all(check(q[name]) for name, check in fields.items())


def _calendar(q: dict[str, Any], after: list[Any]) -> bool:
    fields = {
        "staffId": _id,
        "from": _key,
        "to": _key,
        "eventType": _names(EVENT_TYPES),
        "include": _names(INCLUDES),
    }
    return _shaped(q, fields) and len(after) == 2 and _key(after[0]) and _event_id(after[1])


def _history(q: dict[str, Any], after: list[Any]) -> bool:
    fields = {
        "clientId": _id,
        "merchantId": _optional_id,
        "from": _optional_key,
        "to": _optional_key,
        "bookingMethod": _names(BOOKING_METHODS),
        "descending": lambda v: isinstance(v, bool),
    }
    return _shaped(q, fields) and len(after) == 2 and _key(after[0]) and _text(after[1])


def _listing(q: dict[str, Any], after: list[Any]) -> bool:
    """Staff, services, categories: filters (an id, a text or none), after an id."""
    return (
        all(isinstance(k, str) and (_optional_id(v) or _text(v)) for k, v in q.items())
        and len(after) == 1
        and _id(after[0])
    )


def _queue(q: dict[str, Any], after: list[Any]) -> bool:
    """A store's dispatch queue (``api.dispatch_queue``): after (createdOn key, bookingId)."""
    fields = {"merchantId": _id, "from": _key, "to": _key}
    return _shaped(q, fields) and len(after) == 2 and _key(after[0]) and _text(after[1])


_CHECKS = {"calendar": _calendar, "booking": _history, "queue": _queue}


def _storable(value: str) -> bool:
    """Text a database column or parameter can hold: no unpaired surrogate, no NUL."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def path_id(request: web.Request, name: str) -> int:
    """An integer id from the path (``/client/{clientId}``...); 400 unless one."""
    try:
        return parse_id(name, request.match_info[name])
    except ValueError as error:
        raise bad_request(str(error)) from None
