"""The dispatch queue on the dashboard: each store's appointment requests that need a
manager (``api.dispatch_queue.queue_answer``, the body of ``GET /mirror/v1/stores/{id}/queue``),
and the actions on one, through ``api.dispatch_queue.dispatch`` (write-through to Booxi, as
``PUT /booking/v1/booking/{id}``):

- **Assign**: to the staff member chosen (``staffId``), status unchanged: a request
  pending the staff member's approval stays in the queue until approved;
- **Assign and approve**: to the staff member chosen, status ``Approved``;
- **Approve**: status ``Approved`` (a request that has a staff member);
- **Decline**: status ``Cancelled`` (Booxi has no "declined": a store declines by
  cancelling).

Actions need a key with the ``write`` scope; a read-only key sees the queue without
them. Booxi's refusal (a staff member busy then: 409) is shown as a page with its
message; nothing is retried.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from api.auth import Principal
from api.dashboard import panels
from api.dashboard.render import PageError, page, principal_of, see_other
from api.dispatch_queue import dispatch, queue_answer
from api.errors import ApiError

ACTIONS: dict[str, tuple[bool, str | None, str]] = {
    # action: (needs a staff member, status to set, what the confirmation says)
    "assign": (True, None, "assigned"),
    "assign-approve": (True, "Approved", "assigned and approved"),
    "approve": (False, "Approved", "approved"),
    "decline": (False, "Cancelled", "declined"),
}
BOOKING_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclasses.dataclass(frozen=True)
class Request:
    """One request in a store's queue, as shown."""

    booking_id: str
    starts_on: str
    services: str
    client_id: int | None
    client_name: str
    status: str
    staff_id: int | None
    staff_name: str
    note: str


@dataclasses.dataclass(frozen=True)
class StoreQueue:
    merchant_id: int
    merchant_name: str
    requests: list[Request]
    staff: list[tuple[int, str]]  # whom a request can be assigned to
    error: str = ""


def _request(
    booking: dict[str, Any], names: dict[int, str], caller: Principal, zone: ZoneInfo
) -> Request:
    client_id, client_name = panels.client_of(booking, caller.retain_pii)
    staff_id = booking.get("staffId")
    staff_id = staff_id if isinstance(staff_id, int) and staff_id > 0 else None
    client = booking.get("client") if isinstance(booking.get("client"), dict) else None
    note = client.get("additionalRequest") if client and caller.retain_pii else ""
    return Request(
        booking_id=str(booking.get("bookingId") or ""),
        starts_on=panels.shown_time(str(booking.get("startsOn") or ""), zone),
        services=panels.services_of(booking),
        client_id=client_id,
        client_name=client_name,
        status=str(booking.get("status") or ""),
        staff_id=staff_id,
        staff_name=names.get(staff_id, "") if staff_id else "",
        note=note if isinstance(note, str) else "",
    )


async def read_queues(request: web.Request, overview: panels.Overview) -> list[StoreQueue]:
    """The queue of each store the overview shows; a store whose queue cannot be read
    (Booxi unreachable at its first read) says why instead."""
    caller = principal_of(request)
    queues = []
    for merchant_id, merchant_name in overview.stores:
        staff = [(r.sync.staff_id, r.sync.staff_name) for r in overview.staff_of(merchant_id)]
        names = dict(staff)
        try:
            body = await queue_answer(request, merchant_id)
        except ApiError as error:
            queues.append(StoreQueue(merchant_id, merchant_name, [], staff, error.message))
            continue
        merchants = [m for m in body.get("merchants") or [] if isinstance(m, dict)]
        zone = panels.zone_of(merchants[0].get("timeZone") if merchants else None)
        requests = [_request(b, names, caller, zone) for b in body.get("bookings") or []]
        queues.append(StoreQueue(merchant_id, merchant_name, requests, staff))
    return queues


@page
async def act(request: web.Request) -> web.StreamResponse:
    """``POST /dashboard/queue/{bookingId}``: ``action`` (``ACTIONS``), ``staff_id`` for
    the assignments (CSRF checked by ``page``)."""
    principal_of(request)
    booking_id = request.match_info["bookingId"]
    if not BOOKING_ID.fullmatch(booking_id):
        raise PageError(400, "Not a booking id.")
    form = await request.post()
    action = form.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise PageError(400, "Choose assign, approve or decline.")
    needs_staff, status, done = ACTIONS[action]
    staff_id = None
    if needs_staff:
        raw = form.get("staff_id")
        if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 16:
            raise PageError(400, "Choose the staff member to assign the request to.")
        staff_id = int(raw)
    await dispatch(request, booking_id, staff_id=staff_id, status=status)
    return see_other(f"/?done={action}&booking={booking_id}#queue")


def confirmation(action: str, booking_id: str) -> str:
    """What the overview says after an action (``?done=...&booking=...``), or nothing
    for anything not made by ``act``."""
    if action not in ACTIONS or not BOOKING_ID.fullmatch(booking_id):
        return ""
    return f"Request {booking_id} {ACTIONS[action][2]}."
