"""Booxi's 2xx answers to writes, turned into storage jobs (source ``write``).

Each ``*_job(body, now)`` reads the answer as Booxi sends it and returns the writer job
that stores it, or raises ``MalformedError`` when the answer is not the object expected
(the caller then stores nothing). A booking keeps the version rule of
``storage.bookings`` (an answer never undoes a newer version a webhook brought) and
gets its calendar events derived at once, as a webhook's would.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from storage import bookings, erasure, reference
from storage.errors import MalformedError
from storage.rows import Json, booking_row, client_link_row, client_row, group_event_row

Job = Callable[[Connection], None]


def booking_job(body: bytes, now: dt.datetime, *, retain: bool = True) -> Job:
    """``{"booking": {...}, "groupEvents": [...]}`` of ``POST``/``PUT /booking``; with
    ``retain=False`` the booking and its client are blocked before anything is stored."""
    data = _object(body)
    booking = data.get("booking")
    if not isinstance(booking, dict):
        raise MalformedError("booking must be a JSON object")
    row = booking_row(booking, "write", now)
    groups = [group_event_row(g, "write", now) for g in _list(data, "groupEvents")]

    def job(conn: Connection) -> None:
        if not retain:
            erasure.block_booking(conn, row["booking_id"], row["client_id"], now)
        if bookings.upsert_bookings(conn, [row], strictly_newer=False):
            bookings.replace_derived_events(conn, [booking], source="write", now=now)
        bookings.upsert_group_events(conn, groups)

    return job


def client_job(body: bytes, now: dt.datetime) -> Job:
    """``{"client": {...}, "clientLinks": [...]}`` of ``POST /client``, ``PUT /client/{id}``."""
    data = _object(body)
    client = client_row(data.get("client"), "write", now)
    links = [client_link_row(link, "write", now) for link in _list(data, "clientLinks")]

    def job(conn: Connection) -> None:
        reference.upsert_clients(conn, [client])
        reference.upsert_links(conn, links)

    return job


def link_job(body: bytes, now: dt.datetime) -> Job:
    """``{"link": {...}, "client": {...}}`` of ``PUT /client/{id}/moduleLink/{moduleId}``."""
    data = _object(body)
    link = client_link_row(data.get("link"), "write", now)
    client = client_row(data.get("client"), "write", now)

    def job(conn: Connection) -> None:
        reference.upsert_clients(conn, [client])
        reference.upsert_links(conn, [link])

    return job


def deleted_client_job(client_id: int, body: bytes, now: dt.datetime) -> Job:
    """Any 2xx of ``DELETE /client/{id}`` (Booxi's is 204): the client and its links go.

    Booxi also blanks the client in their bookings; those arrive by webhook or poll.
    """

    def job(conn: Connection) -> None:
        erasure.erase_client(conn, client_id, now)

    return job


def _object(body: bytes) -> Json:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedError("the answer is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedError("the answer is not a JSON object")
    return data


def _list(data: Json, key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedError(f"{key} must be a list")
    return value
