"""``POST``/``PUT /webhooks/booxi``: the receiver of Booxi's events.

Authenticate (401, nothing stored), parse (400, nothing stored), then store the raw
event in the inbox and apply it in the same transaction; the 200 goes out only once
that transaction is committed. The answer says what the event did:
``{"eventId": "...", "outcome": "applied" | "stale" | "duplicate" | "ignored"}``.
An event of a store the mirror does not serve is ``ignored``: acknowledged, not applied,
its inbox row without its body (``mirror.webhooks``).
"""

from __future__ import annotations

import dataclasses
import logging

from aiohttp import web

from api.errors import ApiError
from api.keys import CONFIG, NO_RETENTION, REPOLL, WRITER
from mirror.webhooks import (
    MalformedEventError,
    WebhookAuthError,
    apply_events,
    parse_event,
    verify,
)

log = logging.getLogger(__name__)


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
    if outcome == "applied":
        request_repoll(request, event.booking)
    log.info(
        "webhook.received",
        extra={"event_id": event.event_id, "event_type": event.event_type, "outcome": outcome},
    )
    return web.json_response({"eventId": event.event_id, "outcome": outcome})


def request_repoll(request: web.Request, booking: object) -> None:
    """A booking the mirror just stored outside a poll: an appointment's calendar events
    carry provisional ids, and a reservation changes its group event's attendance, until
    Booxi's calendar is asked (``mirror.repoll``)."""
    repoller = request.app.get(REPOLL)
    if repoller is None or not isinstance(booking, dict):
        return
    staff_id = booking.get("staffId")
    if isinstance(staff_id, int) and not isinstance(staff_id, bool):
        repoller.request(staff_id)
