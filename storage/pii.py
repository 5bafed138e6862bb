"""Clients' personal data: what it is in Booxi's JSON, how it is stripped, and which
clients and bookings the mirror must keep none of (``pii_block``).

Personal data: names, e-mail, phones, address, date of birth, membership number,
metadata, ``additionalRequest``, ``quickNote`` and survey answers. Stripping keeps
ids, times, services, staff, statuses and presence, so calendars and counts still
work. Strings become ``""``, objects their empty form, survey answers ``null``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import String, bindparam, select, text
from sqlalchemy.engine import Connection

from storage.dialect import insert
from storage.models import PiiBlock, table_of

PII_BLOCK = table_of(PiiBlock)
Json = dict[str, Any]

PERSON_TEXT = (
    "firstName",
    "lastName",
    "email",
    "homePhoneNumber",
    "mobilePhoneNumber",
    "membershipNumber",
    "additionalRequest",
    "quickNote",
)
ADDRESS = {"street": "", "city": "", "state": "", "postalCode": "", "country": ""}


def strip_person(person: Json) -> None:
    """A client object or a booking's client block / attendee, in place."""
    for key in PERSON_TEXT:
        if isinstance(person.get(key), str):
            person[key] = ""
    if "address" in person:
        person["address"] = dict(ADDRESS) if isinstance(person["address"], dict) else None
    if "dateOfBirth" in person:
        person["dateOfBirth"] = None
    if "metadata" in person and person["metadata"]:
        person["metadata"] = {}
    if "surveyAnswers" in person:
        person["surveyAnswers"] = None


def strip_booking(booking: Json) -> None:
    """A booking's personal data, in place: its client, attendees, notes, survey answers."""
    if isinstance(booking.get("client"), dict):
        strip_person(booking["client"])
    for attendee in booking.get("attendees") or []:
        if isinstance(attendee, dict):
            strip_person(attendee)
    for item in booking.get("items") or []:
        if isinstance(item, dict) and "surveyAnswers" in item:
            item["surveyAnswers"] = None
    if isinstance(booking.get("quickNote"), str):
        booking["quickNote"] = ""


def strip_event(event: Json) -> None:
    """A webhook event's content, in place (``content`` or ``eventContent``)."""
    for envelope in ("content", "eventContent"):
        content = event.get(envelope)
        if not isinstance(content, dict):
            continue
        if isinstance(content.get("booking"), dict):
            strip_booking(content["booking"])
        if isinstance(content.get("client"), dict):
            strip_person(content["client"])


def strip_any(value: Any) -> Any:
    """Any answer of Booxi's (a booking, client, link or list envelope), in place."""
    if isinstance(value, dict):
        if "bookingId" in value:
            strip_booking(value)
        elif {"firstName", "lastName", "email"} & set(value) and "staffId" not in value:
            strip_person(value)
        for key in ("booking", "client", "bookings", "clients"):
            child = value.get(key)
            if isinstance(child, list):
                for item in child:
                    strip_any(item)
            elif isinstance(child, dict):
                strip_any(child)
    return value


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# ---- blocks -----------------------------------------------------------------------------
def block(
    conn: Connection, kind: str, idents: Iterable[object], reason: str, now: dt.datetime
) -> None:
    rows = [
        {"kind": kind, "ident": str(i), "reason": reason, "created_at": now}
        for i in dict.fromkeys(idents)
    ]
    if rows:
        conn.execute(insert(conn, PII_BLOCK).on_conflict_do_nothing(), rows)


def unblock(conn: Connection, kind: str, idents: Iterable[object], reason: str) -> None:
    values = [str(i) for i in idents]
    for start in range(0, len(values), 500):
        conn.execute(
            PII_BLOCK.delete().where(
                PII_BLOCK.c.kind == kind,
                PII_BLOCK.c.reason == reason,
                PII_BLOCK.c.ident.in_(values[start : start + 500]),
            )
        )


def blocked(conn: Connection, kind: str, idents: Iterable[object]) -> set[str]:
    """Those of ``idents`` (as strings) whose personal data must not be kept."""
    values = [str(i) for i in dict.fromkeys(idents) if i is not None]
    found: set[str] = set()
    for start in range(0, len(values), 500):
        found.update(
            conn.execute(
                select(PII_BLOCK.c.ident).where(
                    PII_BLOCK.c.kind == kind, PII_BLOCK.c.ident.in_(values[start : start + 500])
                )
            ).scalars()
        )
    return found


# Both kinds in one statement, made once: every webhook batch asks twice (its bookings,
# then its inbox rows), and building a select per kind and call cost more than the query.
_BLOCKED_EITHER = text(
    "SELECT kind, ident FROM pii_block WHERE (kind = 'booking' AND ident IN :bookings) "
    "OR (kind = 'client' AND ident IN :clients)"
).bindparams(  # typed: an empty list is rendered as an empty set of that type
    bindparam("bookings", expanding=True, type_=String()),
    bindparam("clients", expanding=True, type_=String()),
)
_CHUNK = 500


def blocked_bookings_and_clients(
    conn: Connection, booking_ids: Iterable[object], client_ids: Iterable[object]
) -> tuple[set[str], set[str]]:
    """Those of ``booking_ids`` and of ``client_ids`` (as strings) whose personal data
    must not be kept, in one query per 500 of each."""
    bookings = [str(i) for i in dict.fromkeys(booking_ids) if i is not None]
    clients = [str(i) for i in dict.fromkeys(client_ids) if i is not None]
    found: dict[str, set[str]] = {"booking": set(), "client": set()}
    for start in range(0, max(len(bookings), len(clients)), _CHUNK):
        params = {
            "bookings": bookings[start : start + _CHUNK],
            "clients": clients[start : start + _CHUNK],
        }
        for kind, ident in conn.execute(_BLOCKED_EITHER, params):
            found[kind].add(ident)
    return found["booking"], found["client"]


def strip_blocked_booking_rows(conn: Connection, rows: Sequence[Json]) -> None:
    """Booking rows about to be stored: strip those of blocked bookings or clients."""
    if not rows:
        return
    bookings, clients = blocked_bookings_and_clients(
        conn, (r["booking_id"] for r in rows), (r["client_id"] for r in rows)
    )
    for row in rows:
        if row["booking_id"] in bookings or str(row["client_id"]) in clients:
            booking = json.loads(row["raw"])
            strip_booking(booking)
            row["raw"] = dump(booking)


# ---- stripping what is stored -----------------------------------------------------------
def strip_clients_everywhere(conn: Connection, client_ids: set[int]) -> dict[str, int]:
    """Remove these clients' personal data from every table that holds it; counts."""

    counts = {"bookings": 0, "clients": 0, "inbox_events": 0, "idempotency_results": 0}
    if not client_ids:
        return counts
    ids = sorted(client_ids)
    booking_ids: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join(str(int(i)) for i in chunk)
        rows = conn.execute(
            text(f"SELECT booking_id, raw FROM booking WHERE client_id IN ({marks})")
        ).all()
        for booking_id, raw in rows:
            booking_ids.add(booking_id)
            booking = json.loads(raw)
            strip_booking(booking)
            new = dump(booking)
            if new != raw:
                conn.execute(
                    text("UPDATE booking SET raw = :raw WHERE booking_id = :id"),
                    {"raw": new, "id": booking_id},
                )
                counts["bookings"] += 1
        rows = conn.execute(text(f"SELECT id, raw FROM client WHERE id IN ({marks})")).all()
        for client_id, raw in rows:
            client = json.loads(raw)
            strip_person(client)
            conn.execute(
                text(
                    "UPDATE client SET raw = :raw, first_name = '', last_name = '', email = '', "
                    "phone_home = '', phone_mobile = '' WHERE id = :id"
                ),
                {"raw": dump(client), "id": client_id},
            )
            counts["clients"] += 1
        rows = conn.execute(
            text(f"SELECT seq, body FROM inbox_event WHERE client_id IN ({marks})")
        ).all()
        counts["inbox_events"] += _strip_inbox(conn, rows)
    booking_list = sorted(booking_ids)
    for start in range(0, len(booking_list), 500):
        some = booking_list[start : start + 500]
        rows = conn.execute(
            text(
                "SELECT seq, body FROM inbox_event WHERE booking_id IN "
                "(" + ",".join(f":b{i}" for i in range(len(some))) + ")"
            ),
            {f"b{i}": b for i, b in enumerate(some)},
        ).all()
        counts["inbox_events"] += _strip_inbox(conn, rows)
    wanted = {str(i) for i in client_ids}
    for key, principal, body in conn.execute(
        text("SELECT key, principal, body FROM idempotency_result WHERE body IS NOT NULL")
    ).all():
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if _mentions(data, wanted, booking_ids):
            conn.execute(
                text(
                    "UPDATE idempotency_result SET body = :body WHERE key = :k AND principal = :p"
                ),
                {"body": dump(strip_any(data)), "k": key, "p": principal},
            )
            counts["idempotency_results"] += 1
    return counts


def _strip_inbox(conn: Connection, rows: Sequence[Any]) -> int:

    changed = 0
    for seq, body in rows:
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if isinstance(event, dict):
            strip_event(event)
            new = dump(event)
        else:
            new = ""
        if new != body:
            conn.execute(
                text("UPDATE inbox_event SET body = :body WHERE seq = :seq"),
                {"body": new, "seq": seq},
            )
            changed += 1
    return changed


def _mentions(data: Any, client_ids: set[str], booking_ids: set[str]) -> bool:
    if isinstance(data, dict):
        if str(data.get("bookingId")) in booking_ids:
            return True
        if "id" in data and ({"firstName", "email"} & set(data)) and str(data["id"]) in client_ids:
            return True
        return any(_mentions(v, client_ids, booking_ids) for v in data.values())
    if isinstance(data, list):
        return any(_mentions(v, client_ids, booking_ids) for v in data)
    return False
