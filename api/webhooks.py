"""``POST``/``PUT /webhooks/booxi``: the receiver of Booxi's events.

Authenticate (401, nothing stored), parse (400, nothing stored), then store the raw
event in the inbox and apply it in the same transaction; the 200 goes out only once
that transaction is committed. The answer says what the event did:
``{"eventId": "...", "outcome": "applied" | "stale" | "duplicate" | "ignored"}``; the
request's access line carries ``event_id``, ``event_type`` and ``outcome`` too (one line
per event, not two).
An event of a store the mirror does not serve is ``ignored``: acknowledged, not applied,
its inbox row without its body (``mirror.webhooks``).
"""

from __future__ import annotations

import dataclasses
import logging

from aiohttp import web

from api.access_log import ACCESS_FIELDS
from api.errors import ApiError
from api.keys import CONFIG, NO_RETENTION, READER, REPOLL, WRITER
from mirror.repoll import booking_span
from mirror.webhooks import (
    MalformedEventError,
    WebhookAuthError,
    apply_events,
    parse_event,
    verify,
)
from storage import reads

log = logging.getLogger(__name__)


async def receive(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        verified = verify(request.app[CONFIG].webhook, body, request.headers)
    except WebhookAuthError as error:
        log.warning("webhook.rejected", extra={"reason": str(error), "remote": request.remote})
        raise ApiError(401, "webhook not authenticated") from None
    try:
        served = frozenset(request.app[CONFIG].sync.merchant_ids)
        event = parse_event(body, request.headers, verified, served)
    except MalformedEventError as error:
        log.warning("webhook.malformed", extra={"reason": str(error)})
        raise ApiError(400, f"malformed webhook event: {error}") from None
    marks = request.app[NO_RETENTION]
    if marks.matches((event.booking or {}).get("client")) or marks.matches(
        event.content.get("client")
    ):
        event = dataclasses.replace(event, retain=False)
    applied = await request.app[WRITER].run_batched(apply_events, event)
    if applied.repoll:
        _repoll_span(request, event.booking)
    request[ACCESS_FIELDS] = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "outcome": applied.outcome,
    }
    return web.json_response({"eventId": event.event_id, "outcome": applied.outcome})


async def request_repoll(request: web.Request, booking: object) -> None:
    """A booking the mirror just stored from a write's answer: an appointment whose
    calendar events now carry provisional ids, or a reservation (its group event's
    attendance changed), asks for a re-poll of the staff member's calendar over the
    booking's span (``mirror.repoll``). An update that changed no event (presence,
    notes) asks nothing. (A webhook's apply says so itself: ``Applied.repoll``.)"""
    if request.app.get(REPOLL) is None or not isinstance(booking, dict):
        return
    method, booking_id = booking.get("bookingMethod"), booking.get("bookingId")
    if method == "Appointment":
        if not isinstance(booking_id, str) or not await request.app[READER].run(
            reads.has_provisional_events, booking_id
        ):
            return
    elif method != "GroupReservation":
        return
    _repoll_span(request, booking)


def _repoll_span(request: web.Request, booking: object) -> None:
    """Ask for a re-poll of the booking's staff member over the booking's span."""
    repoller = request.app.get(REPOLL)
    if repoller is None or not isinstance(booking, dict):
        return
    staff_id, span = booking.get("staffId"), booking_span(booking)
    if isinstance(staff_id, int) and not isinstance(staff_id, bool) and span is not None:
        repoller.request(staff_id, *span)
