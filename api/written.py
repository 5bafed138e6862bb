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

from sqlalchemy.engine import Connection

from mirror import answers
from storage import bookings, erasure, reference
from storage.errors import MalformedError
from storage.rows import Json, booking_row, client_link_row, client_row, group_event_row

Job = Callable[[Connection], None]


def booking_job(body: bytes, now: dt.datetime, *, retain: bool = True) -> Job:
    """``POST``/``PUT /booking``'s answer, wrapped (``{"booking", "groupEvents"}``) or the
    bare booking (``mirror.answers``); with ``retain=False`` the booking and its client
    are blocked before anything is stored."""
    booking, group_events = answers.booking_of(_object(body))
    if booking is None:
        raise MalformedError("the answer holds no booking object")
    row = booking_row(booking, "write", now)
    groups = [group_event_row(g, "write", now) for g in group_events]

    def job(conn: Connection) -> None:
        if not retain:
            erasure.block_booking(conn, row["booking_id"], row["client_id"], now)
        if bookings.upsert_bookings(conn, [row], strictly_newer=False):
            bookings.replace_derived_events(conn, [booking], source="write", now=now)
        bookings.upsert_group_events(conn, groups)

    return job


def client_job(body: bytes, now: dt.datetime) -> Job:
    """A client answer (``POST /client``, ``PUT /client/{id}``, ``GET /client/{id}``),
    wrapped (``{"client", "clientLinks"}``) or the bare client."""
    found, found_links = answers.client_of(_object(body))
    if found is None:
        raise MalformedError("the answer holds no client object")
    client = client_row(found, "write", now)
    links = [client_link_row(link, "write", now) for link in found_links]

    def job(conn: Connection) -> None:
        reference.upsert_clients(conn, [client])
        reference.upsert_links(conn, links)

    return job


def link_job(body: bytes, now: dt.datetime) -> Job:
    """``PUT /client/{id}/moduleLink/{moduleId}``'s answer: ``{"link", "client"}`` or the
    bare link (the client is then left as stored)."""
    found_link, found_client = answers.link_of(_object(body))
    if found_link is None:
        raise MalformedError("the answer holds no module link")
    link = client_link_row(found_link, "write", now)
    client = client_row(found_client, "write", now) if found_client is not None else None

    def job(conn: Connection) -> None:
        if client is not None:
            reference.upsert_clients(conn, [client])
        reference.upsert_links(conn, [link])

    return job


def forget_booking_job(booking_id: str) -> Job:
    """A booking written through the mirror whose new state could not be read: drop the
    stored (older) version, so the next read asks Booxi rather than serve it."""

    def job(conn: Connection) -> None:
        bookings.delete_booking(conn, booking_id)

    return job


def forget_client_job(client_id: int) -> Job:
    """The same for a client: the next read of it asks Booxi."""

    def job(conn: Connection) -> None:
        reference.delete_client(conn, client_id)

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
