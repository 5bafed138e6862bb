"""Booxi's webhook events: authenticate, parse, and apply them with the inbox.

Choices where Booxi is silent (see booxi-api.md):

- Authentication: with ``[webhook] secret`` the call must carry it, as
  ``Authorization: Bearer <secret>`` or verbatim in ``secret_header``; with
  ``signing_secret`` it must carry a valid Standard Webhooks signature
  (``webhook-id``, ``webhook-timestamp`` within 5 minutes, ``webhook-signature``).
  With both set, both are required; with neither, every call is refused (an open
  receiver would let anyone rewrite the mirror).
- The envelope is ``{"eventId", "eventType", "createdOn", "content"}``; ``eventContent``
  is accepted for ``content``, and ``webhook-id`` stands for a missing ``eventId``.
- ``appointment.*`` and ``reservation.*`` carry ``booking`` (and ``clientLinks``);
  ``client.created``/``client.updated`` carry ``client``; ``client.deleted`` removes the
  client and its links. Any other type is stored and acknowledged, and changes nothing.
- Outcomes: ``applied``; ``stale`` (the mirror holds this booking at the same or a newer
  ``modifiedOn``: recorded, nothing changed); ``duplicate`` (event id seen before:
  acknowledged, not stored again); ``ignored`` (unknown type, or a store the mirror does
  not serve).
- Stores the mirror does not serve (Booxi calls the receiver for a whole merchant
  group): a booking or client event of a store outside ``[sync] merchant_ids`` (when
  set), or, when that is empty, of a store the mirror holds no reference data for, is
  acknowledged (``ignored``, so Booxi stops retrying) and not applied; its inbox row
  keeps the event id (for de-duplication) and type only: no body, no booking or client
  id. **choice**: while the mirror holds no store at all (before its first poll), every
  store counts as served, so that no event is lost before the store list is known.
- What is refused (400, nothing stored): a body that is not UTF-8 JSON, nests deeper than
  ``MAX_DEPTH`` (checked before parsing), or holds text no database column can hold (an
  unpaired surrogate); ids out of range (integer ids from 1 to 2^53 - 1, booking ids of
  1 to 64 characters, module ids of 1 to 100, event ids of 1 to 200 characters); instants
  that are not RFC 3339 or outside 1970-2199 (``storage.times.parse_instant``), the
  envelope's ``createdOn`` included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import json
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mirror.config import WebhookConfig
from mirror.vocabulary import check_booking_id, check_module_id, is_id
from storage import bookings, erasure, inbox, pii, reference
from storage.errors import MalformedError
from storage.rows import (
    Json,
    booking_row,
    calendar_event_row,
    client_link_row,
    client_row,
    derived_calendar_events,
)
from storage.times import parse_instant, utcnow

MAX_EVENT_ID = 200
MAX_DEPTH = 32  # nesting of a webhook body; Booxi's events nest about 6 deep
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
# A JSON escape of a UTF-16 surrogate (\ud800-\udfff), the only way a body that decodes
# as UTF-8 can hold an unpaired one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class WebhookAuthError(Exception):
    """The call did not prove it comes from Booxi (answered 401, nothing stored)."""


class MalformedEventError(ValueError):
    """The body is not an event the mirror can read (answered 400, nothing stored)."""


@dataclasses.dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    event_type: str
    created_on: str | None
    content: Json
    body: str
    verified: str
    booking: Json | None = None
    booking_row: Json | None = None
    client: Json | None = None
    links: tuple[Json, ...] = ()
    retain: bool = True  # False: a booking made without retention (see api.retention_marks)
    # the stores the mirror serves (``[sync] merchant_ids``); empty: those it holds
    # reference data for; None: no check (replay, direct callers)
    served: frozenset[int] | None = None


def verify(config: WebhookConfig, body: bytes, headers: Mapping[str, str]) -> str:
    """How the call proved itself (``secret``, ``signature`` or both); else WebhookAuthError."""
    proofs = []
    if config.secret is None and config.signing_secret is None:
        raise WebhookAuthError("the webhook receiver has no secret configured")
    if config.secret is not None:
        expected = config.secret.get_secret_value()
        if config.secret_header:
            given = headers.get(config.secret_header, "")
        else:
            scheme, _, given = headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer":
                given = ""
        if not given.isascii():  # a header byte outside ASCII: no secret is made of those
            raise WebhookAuthError("webhook secret header is not ASCII")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookAuthError("missing or wrong webhook secret")
        proofs.append("secret")
    if config.signing_secret is not None:
        try:
            Webhook(config.signing_secret.get_secret_value()).verify(
                body, dict(headers), json_parse=False
            )
        except (WebhookVerificationError, ValueError, UnicodeDecodeError) as error:
            raise WebhookAuthError(f"webhook signature: {error}") from None
        proofs.append("signature")
    return "+".join(proofs)


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON text nests deeper than ``limit``: brackets counted outside strings,
    without parsing (so 100,000 nested arrays cost one scan, never a deep recursion).
    A body with no more opening brackets than ``limit`` in all (Booxi's events have about
    a dozen) cannot nest deeper: counted in C, it needs no scan."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b"", body)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def parse_event(
    body: bytes,
    headers: Mapping[str, str],
    verified: str,
    served: frozenset[int] | None = None,
) -> WebhookEvent:
    """Read one event, validating every field the mirror will index on or store;
    ``served`` as ``WebhookEvent.served``. (The event is made once, at the end: every
    webhook is parsed on the event loop, where ``dataclasses.replace`` per field cost
    more than the rest of this function's checks.)"""
    if too_deep(body):
        raise MalformedEventError(f"body nests deeper than {MAX_DEPTH} levels")
    try:
        text = body.decode("utf-8")
        data = json.loads(text)
        if _SURROGATE_ESCAPE.search(body):  # only \u escapes make surrogates: then check
            json.dumps(data, ensure_ascii=False).encode("utf-8")  # none unpaired
    except UnicodeEncodeError:
        raise MalformedEventError("body holds an unpaired surrogate (\\ud800-\\udfff)") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise MalformedEventError(f"body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise MalformedEventError("body must be a JSON object")
    event_id = data.get("eventId", headers.get("webhook-id"))
    if (
        not isinstance(event_id, str)
        or not event_id.strip()
        or len(event_id) > MAX_EVENT_ID
        or not _storable(event_id)
    ):
        raise MalformedEventError("eventId must be a non-empty string of at most 200 characters")
    event_type = data.get("eventType")
    if not isinstance(event_type, str) or not event_type or len(event_type) > MAX_EVENT_ID:
        raise MalformedEventError("eventType must be a non-empty string of at most 200 characters")
    created_on = data.get("createdOn")
    if created_on is not None:
        try:
            parse_instant(created_on)
        except ValueError:
            raise MalformedEventError(
                "createdOn must be an RFC 3339 date-time from 1970 to 2199"
            ) from None
    content = data.get("content", data.get("eventContent"))
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise MalformedEventError("content must be a JSON object")
    family = event_type.split(".", 1)[0]
    now = utcnow()
    booking: Json | None = None
    row: Json | None = None
    client: Json | None = None
    rows: tuple[Json, ...] = ()
    try:
        if family in ("appointment", "reservation"):
            booking = content.get("booking")
            row = booking_row(booking, "webhook", now)
            _check_booking(booking, row, now)
        elif family == "client" and event_type != "client.deleted":
            client = client_row(content.get("client"), "webhook", now)
            _check_ids("client", client, ("id",), ("merchant_id",))
        elif event_type == "client.deleted":
            gone = content.get("client")
            if not isinstance(gone, dict) or not is_id(gone.get("id")):
                raise MalformedError("client.id must be an integer from 1 to 2^53 - 1")
            client = {"id": gone["id"]}
        links = content.get("clientLinks") or []
        if family in ("appointment", "reservation", "client"):
            if not isinstance(links, list):
                raise MalformedError("clientLinks must be a list")
            rows = tuple(client_link_row(link, "webhook", now) for link in links)
            for link in rows:
                _check_ids("clientLinks[]", link, ("entity_id",), ())
                _check_text_id(check_module_id, "clientLinks[].moduleId", link["module_id"])
                if len(link["external_id"]) > MAX_EVENT_ID:
                    raise MalformedError("clientLinks[].externalId is longer than 200 characters")
    except MalformedError as error:
        raise MalformedEventError(str(error)) from None
    return WebhookEvent(
        event_id=event_id,
        event_type=event_type,
        created_on=created_on,
        content=content,
        body=text,
        verified=verified,
        booking=booking,
        booking_row=row,
        client=client,
        links=rows,
        served=served,
    )


def _storable(value: str) -> bool:
    """Text a column holds: no NUL, no unpaired surrogate (a header's undecodable byte)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def _check_text_id(check: Any, name: str, value: object) -> None:
    try:
        check(name, value)
    except ValueError as error:
        raise MalformedError(str(error)) from None


def _check_ids(what: str, row: Json, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    """Integer ids of a row within 1 to 2^53 - 1 (what a database column and a JavaScript
    client hold exactly)."""
    for column in required + optional:
        value = row.get(column)
        if (value is not None or column in required) and not is_id(value):
            raise MalformedError(f"{what} {column} must be an integer from 1 to 2^53 - 1")


def _check_booking(booking: Any, row: Json, now: dt.datetime) -> None:
    """What applying the booking will store beyond its row: ids in range, and the
    calendar events derived from its items (checked here, so that the transaction that
    applies the event cannot fail on them)."""
    _check_text_id(check_booking_id, "booking.bookingId", row["booking_id"])
    _check_ids("booking", row, ("merchant_id",), ("staff_id", "client_id", "group_event_id"))
    items = booking.get("items")
    if items is not None and not isinstance(items, list):
        raise MalformedError("booking.items must be a list")
    for derived in derived_calendar_events(booking, []):
        event = calendar_event_row(derived, "webhook", now)
        _check_ids("booking item", event, ("staff_id",), ("merchant_id",))


class Applied(typing.NamedTuple):
    """What applying one event did: its ``outcome``, and whether the staff member's
    calendar should be polled again over the booking's span (``mirror.repoll``): an
    applied appointment whose calendar events now carry provisional ids, or an applied
    group reservation (its group event's attendance changed)."""

    outcome: str
    repoll: bool = False


def apply_events(conn: Connection, events: Sequence[WebhookEvent]) -> list[Applied]:
    """Apply events in one transaction (the writer's batch); what each did, in order."""
    now = utcnow()
    outcomes: list[str] = [""] * len(events)
    stored = inbox.existing_event_ids(conn, (e.event_id for e in events))
    seen: set[str] = set()
    fresh: list[int] = []
    repeats: list[str] = []
    for index, event in enumerate(events):
        if event.event_id in stored or event.event_id in seen:
            outcomes[index] = "duplicate"
            repeats.append(event.event_id)
        else:
            seen.add(event.event_id)
            fresh.append(index)
    inbox.count_duplicates(conn, [r for r in repeats if r in stored])

    unserved = _unserved(conn, [events[i] for i in fresh])
    received = list(fresh)  # every new event gets an inbox row, in arrival order
    for i in fresh:
        if events[i].event_id in unserved:
            outcomes[i] = "ignored"
    fresh = [i for i in fresh if not outcomes[i]]

    for i in fresh:
        event = events[i]
        if not event.retain and event.booking_row is not None:
            erasure.block_booking(
                conn, event.booking_row["booking_id"], event.booking_row["client_id"], now
            )
        elif not event.retain and event.client is not None:
            pii.block(conn, "client", [event.client["id"]], "no_retention", now)
    provisional = _apply_bookings(conn, events, fresh, outcomes, now)
    reference.upsert_links(
        conn, [{**link, "synced_at": now} for i in fresh for link in events[i].links]
    )
    for i in fresh:
        event = events[i]
        if outcomes[i]:
            continue
        if event.event_type == "client.deleted" and event.client is not None:
            erasure.erase_client(conn, event.client["id"], now)
            outcomes[i] = "applied"
        elif event.client is not None and _anonymized(event.client):
            erasure.erase_client(conn, event.client["id"], now, delete=False)
            reference.upsert_clients(conn, [{**event.client, "synced_at": now}])
            outcomes[i] = "applied"
        elif event.client is not None:
            written_clients = reference.upsert_clients(conn, [{**event.client, "synced_at": now}])
            outcomes[i] = "applied" if written_clients else "stale"
        else:
            outcomes[i] = "ignored"
    inbox.store_events(
        conn,
        [
            _ignored_inbox_row(events[i], unserved[events[i].event_id], now)
            if events[i].event_id in unserved
            else _inbox_row(events[i], outcomes[i], now)
            for i in received
        ],
    )
    return [
        Applied(outcome, outcome == "applied" and _asks_repoll(event.booking, provisional))
        for outcome, event in zip(outcomes, events, strict=True)
    ]


def _asks_repoll(booking: Json | None, provisional: set[str]) -> bool:
    if booking is None:
        return False
    method = booking.get("bookingMethod")
    return method == "GroupReservation" or (
        method == "Appointment" and booking.get("bookingId") in provisional
    )


def merchant_of(event: WebhookEvent) -> int | None:
    """The store an event is about: its booking's, or its client's (None: not known)."""
    if event.booking_row is not None:
        return event.booking_row["merchant_id"]
    if event.client is not None and event.event_type != "client.deleted":
        return event.client.get("merchant_id")
    return None


# Made once: every webhook batch asks them when ``[sync] merchant_ids`` is not set.
_HELD = select(reference.MERCHANT.c.id).where(
    reference.MERCHANT.c.id.in_(bindparam("ids", expanding=True))
)
_ANY_HELD = select(reference.MERCHANT.c.id).limit(1)


def _unserved(conn: Connection, events: Sequence[WebhookEvent]) -> dict[str, int]:
    """The events (by id) about a store the mirror does not serve, with that store: not
    in ``[sync] merchant_ids`` when set; otherwise one the mirror holds no reference data
    for, while it holds some (before the first poll every store counts as served)."""
    found: dict[str, int] = {}
    unknown: dict[str, int] = {}
    for event in events:
        merchant = merchant_of(event)
        if event.served is None or merchant is None:
            continue
        if event.served:
            if merchant not in event.served:
                found[event.event_id] = merchant
        else:
            unknown[event.event_id] = merchant
    if unknown:
        held = set(conn.execute(_HELD, {"ids": sorted(set(unknown.values()))}).scalars())
        any_held = held or conn.execute(_ANY_HELD).first() is not None
        if any_held:
            found.update({e: m for e, m in unknown.items() if m not in held})
    return found


def _ignored_inbox_row(event: WebhookEvent, merchant: int, now: dt.datetime) -> Json:
    """The inbox row of an event of a store the mirror does not serve: its id (so that a
    repeat is a duplicate) and type, nothing of its content."""
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "received_at": now,
        "created_on": event.created_on,
        "booking_id": None,
        "client_id": None,
        "verified": event.verified,
        "outcome": "ignored",
        "detail": f"merchant {merchant} is not served by this mirror: not applied, body not kept",
        "duplicates": 0,
        "body": "",
    }


def _apply_bookings(
    conn: Connection,
    events: Sequence[WebhookEvent],
    indexes: Iterable[int],
    outcomes: list[str],
    now: dt.datetime,
) -> set[str]:
    """Store the bookings of ``events[indexes]`` that are strictly newer than the mirror's
    (the newest event per booking wins) and note ``applied`` or ``stale`` in ``outcomes``;
    the bookings (by id) that now have provisional calendar events."""
    with_booking = [i for i in indexes if events[i].booking_row is not None]
    rows = [{**_row(events[i]), "synced_at": now} for i in with_booking]
    written = bookings.upsert_bookings(conn, rows, strictly_newer=True)
    newest: dict[str, int] = {}
    for i in with_booking:
        row = _row(events[i])
        best = newest.get(row["booking_id"])
        if best is None or row["modified_on"] > _row(events[best])["modified_on"]:
            newest[row["booking_id"]] = i
    applied = {i for booking_id, i in newest.items() if booking_id in written}
    for i in with_booking:
        outcomes[i] = "applied" if i in applied else "stale"
    return bookings.replace_derived_events(
        conn,
        [booking for i in sorted(applied) if (booking := events[i].booking) is not None],
        source="webhook",
        now=now,
    )


def _row(event: WebhookEvent) -> Json:
    assert event.booking_row is not None
    return event.booking_row


def _inbox_row(event: WebhookEvent, outcome: str, now: Any) -> Json:
    booking_id = event.booking_row["booking_id"] if event.booking_row else None
    client_id = (
        event.client["id"]
        if event.client
        else (event.booking_row["client_id"] if event.booking_row else None)
    )
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "received_at": now,
        "created_on": event.created_on,
        "booking_id": booking_id,
        "client_id": client_id,
        "verified": event.verified,
        "outcome": outcome,
        "detail": "",
        "duplicates": 0,
        "body": event.body,
    }


def _anonymized(client_row: Json) -> bool:
    """A client whose names and contacts Booxi blanked: anonymized upstream."""
    return not any(
        client_row.get(c)
        for c in ("first_name", "last_name", "email", "phone_home", "phone_mobile")
    )


def reapply_events(conn: Connection, events: Sequence[WebhookEvent]) -> list[str]:
    """Apply events already in the inbox again (``booxi-mirror inbox replay``); their
    outcomes, in order: ``applied``, ``stale`` (nothing to change) or ``ignored``.

    As ``apply_events``, without the duplicate check and without touching the inbox (its
    rows keep their first outcome). Nothing is written unless strictly newer than what
    the mirror holds: bookings by ``modifiedOn``, and clients and module links too (see
    ``storage.replay``), so replaying twice changes nothing the second time. An old event
    can still bring back what the mirror no longer holds (a booking deleted since, a
    client deleted since): replay is an operator's repair, scoped with ``--since`` or
    ``--event``. Personal data stays out wherever ``apply_events`` keeps it out: blocked
    clients and bookings are stored stripped (``storage.pii``), ``client.deleted`` erases
    again and an anonymized client is erased again (``stale`` once done).
    """
    from storage import replay

    now = utcnow()
    outcomes: list[str] = [""] * len(events)
    _apply_bookings(conn, events, range(len(events)), outcomes, now)
    links = [{**link, "synced_at": now} for event in events for link in event.links]
    reference.upsert_links(conn, replay.fresher_links(conn, links))
    for i, event in enumerate(events):
        if outcomes[i] or event.client is None:
            continue
        if event.event_type == "client.deleted":
            held = replay.client_held(conn, event.client["id"])
            erasure.erase_client(conn, event.client["id"], now)
            outcomes[i] = "applied" if held else "stale"
            continue
        if _anonymized(event.client):  # blocked and stripped again: a no-op once done
            erasure.erase_client(conn, event.client["id"], now, delete=False)
        fresher = replay.fresher_clients(conn, [{**event.client, "synced_at": now}])
        outcomes[i] = "applied" if reference.upsert_clients(conn, fresher) else "stale"
    return [outcome or "ignored" for outcome in outcomes]
