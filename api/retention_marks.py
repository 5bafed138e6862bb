"""Bookings made without retention, between the request and Booxi's answer.

Booxi may send the booking's webhook before its answer to the write comes back, and
the mirror only learns the booking's id from that answer. So, while the write is in
flight, the client it names is remembered here (id, and SHA-256 of the e-mail and
phones: no personal data kept in clear) and a webhook about a matching client is
stored without personal data too. Marks expire after two minutes; by then the booking
is blocked in storage by id.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

TTL_S = 120.0


def _keys(client: Any) -> list[str]:
    if not isinstance(client, dict):
        return []
    keys = []
    if isinstance(client.get("id"), int):
        keys.append(f"id:{client['id']}")
    for field in ("email", "homePhoneNumber", "mobilePhoneNumber"):
        value = client.get(field)
        if isinstance(value, str) and value.strip():
            digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()
            keys.append(f"{field}:{digest}")
    return keys


class PendingNoRetention:
    def __init__(self) -> None:
        self._marks: dict[str, float] = {}

    def add(self, client: Any) -> list[str]:
        self._expire()
        keys = _keys(client)
        deadline = time.monotonic() + TTL_S
        for key in keys:
            self._marks[key] = deadline
        return keys

    def matches(self, client: Any) -> bool:
        self._expire()
        return any(key in self._marks for key in _keys(client))

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, deadline in self._marks.items() if deadline < now]:
            del self._marks[key]
