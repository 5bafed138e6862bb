"""Typed reads of a JSON request body, raising Booxi's 400 with the field's name."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from simulator.errors import bad_request
from simulator.timeutil import parse_rfc3339

MAX_INT = 2**53


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    raw = await request.read()
    if not raw.strip():
        raise bad_request("request body is empty: send a JSON object")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise bad_request("request body must be a JSON object")
    return data


class Fields:
    """One JSON object's fields; ``where`` prefixes messages (``client.presence``)."""

    def __init__(self, data: object, where: str = "") -> None:
        if not isinstance(data, dict):
            raise bad_request(f"{where or 'body'} must be a JSON object")
        self.data: dict[str, Any] = data
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def __contains__(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def integer(self, key: str, *, required: bool = False) -> int | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise bad_request(f"{self._name(key)} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_INT:
            raise bad_request(f"{self._name(key)} must be a positive integer")
        return value

    def req_integer(self, key: str) -> int:
        value = self.integer(key, required=True)
        if value is None:  # pragma: no cover - integer() raised already
            raise bad_request(f"{self._name(key)} is required")
        return value

    def text(self, key: str, *, required: bool = False, max_length: int = 2000) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise bad_request(f"{self._name(key)} is required")
            return None
        if not isinstance(value, str):
            raise bad_request(f"{self._name(key)} must be a string")
        if required and not value.strip():
            raise bad_request(f"{self._name(key)} must not be empty")
        if len(value) > max_length:
            raise bad_request(f"{self._name(key)} is longer than {max_length} characters")
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise bad_request(f"{self._name(key)} must be true or false")
        return value

    def choice(self, key: str, allowed: Iterable[str], *, required: bool = False) -> str | None:
        allowed = tuple(allowed)
        value = self.text(key, required=required)
        if value is not None and value not in allowed:
            raise bad_request(f"{self._name(key)} must be one of {', '.join(allowed)}")
        return value

    def time(self, key: str, *, required: bool = False) -> dt.datetime | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            return parse_rfc3339(value)
        except ValueError:
            raise bad_request(
                f"{self._name(key)} must be an RFC 3339 date-time such as 2024-11-22T15:00:00Z"
            ) from None

    def obj(self, key: str, *, required: bool = False) -> Fields | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise bad_request(f"{self._name(key)} is required")
            return None
        return Fields(value, self._name(key))

    def objects(self, key: str, *, required: bool = False) -> list[Fields] | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise bad_request(f"{self._name(key)} is required")
            return None
        if not isinstance(value, list) or (required and not value):
            raise bad_request(f"{self._name(key)} must be a non-empty list of objects")
        if len(value) > 20:
            raise bad_request(f"{self._name(key)} may hold at most 20 entries")
        return [Fields(item, f"{self._name(key)}[{i}]") for i, item in enumerate(value)]

    def string_map(self, key: str) -> dict[str, str] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise bad_request(f"{self._name(key)} must be an object of strings")
        return dict(value)
