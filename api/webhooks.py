"""``POST``/``PUT /webhooks/booxi``: the receiver of Booxi's events.

Authenticate (401, nothing stored), parse (400, nothing stored), then store the raw
event in the inbox and apply it in the same transaction; the 200 goes out only once
that transaction is committed. The answer says what the event did:
``{"eventId": "...", "outcome": "applied" | "stale" | "duplicate" | "ignored"}``.
An event of a store the mirror does not serve is ``ignored``: acknowledged, not applied,
its inbox row without its body (``mirror.webhooks``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from aiohttp import web

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
# Re-poll checks started by acknowledged events, held until done (asyncio keeps only weak
# references to tasks). Under read load the check waits for the reader thread; the
# event's acknowledgement does not wait for it.
_repoll_checks: set[asyncio.Task[None]] = set()


async def receive(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        verified = verify(request.app[CONFIG].webhook, body, request.headers)
    except WebhookAuthError as error:
        log.warning("webhook.rejected", extra={"reason": str(error), "remote": request.remote})
        raise ApiError(401, "webhook not authenticated") from None
    try:
        event = parse_event(body, request.headers, verified)
    except MalformedEventError as error:
        log.warning("webhook.malformed", extra={"reason": str(error)})
        raise ApiError(400, f"malformed webhook event: {error}") from None
    served = frozenset(request.app[CONFIG].sync.merchant_ids)
    event = dataclasses.replace(event, served=served)
    marks = request.app[NO_RETENTION]
    if marks.matches((event.booking or {}).get("client")) or marks.matches(
        event.content.get("client")
    ):
        event = dataclasses.replace(event, retain=False)
    outcome = await request.app[WRITER].run_batched(apply_events, event)
    if outcome == "applied":  # after the 2xx: the check waits for a reader thread
        task = asyncio.create_task(_repoll_after(request, event.booking))
        _repoll_checks.add(task)
        task.add_done_callback(_repoll_checks.discard)
    log.info(
        "webhook.received",
        extra={"event_id": event.event_id, "event_type": event.event_type, "outcome": outcome},
    )
    return web.json_response({"eventId": event.event_id, "outcome": outcome})


async def _repoll_after(request: web.Request, booking: object) -> None:
    try:
        await request_repoll(request, booking)
    except Exception as error:  # a closing reader at shutdown: the next poll settles ids
        log.warning("webhook.repoll_check_failed", extra={"error": type(error).__name__})


async def request_repoll(request: web.Request, booking: object) -> None:
    """A booking the mirror just stored outside a poll: an appointment whose calendar
    events now carry provisional ids, or a reservation (its group event's attendance
    changed), asks for a re-poll of the staff member's calendar over the booking's span
    (``mirror.repoll``). An update that changed no event (presence, notes) asks nothing."""
    repoller = request.app.get(REPOLL)
    if repoller is None or not isinstance(booking, dict):
        return
    staff_id, booking_id = booking.get("staffId"), booking.get("bookingId")
    span = booking_span(booking)
    if not isinstance(staff_id, int) or isinstance(staff_id, bool) or span is None:
        return
    method = booking.get("bookingMethod")
    if method == "Appointment":
        if not isinstance(booking_id, str) or not await request.app[READER].run(
            reads.has_provisional_events, booking_id
        ):
            return
    elif method != "GroupReservation":
        return
    repoller.request(staff_id, *span)
