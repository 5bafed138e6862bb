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
  acknowledged, not stored again); ``ignored`` (unknown type).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mirror.config import WebhookConfig
from storage import bookings, erasure, inbox, pii, reference
from storage.errors import MalformedError
from storage.rows import Json, booking_row, client_link_row, client_row
from storage.times import utcnow

MAX_EVENT_ID = 200


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


def parse_event(body: bytes, headers: Mapping[str, str], verified: str) -> WebhookEvent:
    """Read one event, validating every field the mirror will index on."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedEventError(f"body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise MalformedEventError("body must be a JSON object")
    event_id = data.get("eventId", headers.get("webhook-id"))
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_EVENT_ID:
        raise MalformedEventError("eventId must be a non-empty string of at most 200 characters")
    event_type = data.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEventError("eventType must be a non-empty string")
    created_on = data.get("createdOn")
    content = data.get("content", data.get("eventContent"))
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise MalformedEventError("content must be a JSON object")
    event = WebhookEvent(
        event_id=event_id,
        event_type=event_type,
        created_on=created_on if isinstance(created_on, str) else None,
        content=content,
        body=text,
        verified=verified,
    )
    family = event_type.split(".", 1)[0]
    now = utcnow()
    try:
        if family in ("appointment", "reservation"):
            booking = content.get("booking")
            event = dataclasses.replace(
                event, booking=booking, booking_row=booking_row(booking, "webhook", now)
            )
        elif family == "client" and event_type != "client.deleted":
            event = dataclasses.replace(
                event, client=client_row(content.get("client"), "webhook", now)
            )
        elif event_type == "client.deleted":
            client = content.get("client")
            if not isinstance(client, dict) or not isinstance(client.get("id"), int):
                raise MalformedError("client.id must be an integer")
            event = dataclasses.replace(event, client={"id": client["id"]})
        links = content.get("clientLinks") or []
        if family in ("appointment", "reservation", "client"):
            if not isinstance(links, list):
                raise MalformedError("clientLinks must be a list")
            event = dataclasses.replace(
                event, links=tuple(client_link_row(link, "webhook", now) for link in links)
            )
    except MalformedError as error:
        raise MalformedEventError(str(error)) from None
    return event


def apply_events(conn: Connection, events: Sequence[WebhookEvent]) -> list[str]:
    """Apply events in one transaction (the writer's batch); their outcomes, in order."""
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

    for i in fresh:
        event = events[i]
        if not event.retain and event.booking_row is not None:
            erasure.block_booking(
                conn, event.booking_row["booking_id"], event.booking_row["client_id"], now
            )
        elif not event.retain and event.client is not None:
            pii.block(conn, "client", [event.client["id"]], "no_retention", now)
    _apply_bookings(conn, events, fresh, outcomes, now)
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
    inbox.store_events(conn, [_inbox_row(events[i], outcomes[i], now) for i in fresh])
    return outcomes


def _apply_bookings(
    conn: Connection,
    events: Sequence[WebhookEvent],
    indexes: Iterable[int],
    outcomes: list[str],
    now: dt.datetime,
) -> None:
    """Store the bookings of ``events[indexes]`` that are strictly newer than the mirror's
    (the newest event per booking wins) and note ``applied`` or ``stale`` in ``outcomes``."""
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
    bookings.replace_derived_events(
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
