"""A store's dispatch queue, a mirror extension outside Booxi's paths (issue #12).

``GET /mirror/v1/stores/{merchantId}/queue`` lists the store's appointment requests
that need a manager: no staff member assigned (Booxi's ``staffId`` null, absent or 0),
or status ``PendingStaffApproval`` / ``PendingClientApproval``; never ``Cancelled``
ones, never group reservations (``storage.store_queue``). Each is Booxi's booking as
stored (the client, the services as ``items``, the requested time as ``startsOn``),
oldest request first (``createdOn``, then ``bookingId``), with the requested time in
``from``/``to`` (RFC 3339, inclusive, as on the read routes; default: from now to the
poll horizon, ``[sync] horizon_days`` ahead, or to ``from`` when that is later).
Envelope as ``GET /booking``'s: ``{"bookings", "services", "staff", "merchants",
"cursor"}``, ``[api] page_size`` bookings a page; ``cursor=...`` alone gets the next.

Served from the mirror, kept fresh by the store's queue poll (``mirror.store_queue``),
webhooks and writes; ``Cache-Status``, ``Age`` and ``X-Mirror-Synced-At`` say how
fresh (the queue poll's last success; ``detail=stale`` when it failed last, e.g. a
Booxi that refuses to list a store's bookings), ``X-Mirror-Coverage: partial`` when the
range reaches outside the polled window. A store whose queue was never polled is
fetched from Booxi on the first read. Not kept as a ready answer (``api.ready``): every
read is a fresh query, so nothing can serve a queue older than the database.

The same API keys as the read API: ``Authorization: Bearer`` or ``Booxi-PartnerKey``, a
partner key with the ``read`` scope (a merchant key: 403). A store the key does not see
is "not found", exactly as a store the mirror does not know: another store's key learns
nothing. Errors have the mirror's own shape, ``{"error": {"code", "message",
"status"}}`` (``api.errors``).

Dispatching is ``PUT /booking/v1/booking/{id}`` through the mirror (write-through,
read-your-writes); ``dispatch()`` does the same for the dashboard.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from multidict import MultiDict

from api import writes
from api.auth import PRINCIPAL_KEY, Principal, authenticate
from api.booxi_shape import BooxiShapedError
from api.errors import ApiError, json_error
from api.freshness import Freshness
from api.keys import BOOXI, CONFIG, READER, WRITER
from api.query import Query, encode_cursor
from api.reading import answer, array, cursor_text
from api.upstream import fill, refused
from mirror.booxi_errors import BooxiError
from mirror.client import BooxiClient
from mirror.poller import Window
from mirror.store_queue import poll_store_queue
from mirror.vocabulary import BOOKING_STATUSES, MAX_ID, check_booking_id
from storage import store_queue
from storage.read_connection import ReadConnection
from storage.times import instant_key, stored_utc, utcnow

ROUTE_NAME = "store-queue"
PATH = "/mirror/v1/stores/{merchantId}/queue"
CURSOR_KIND = "queue"


class QueueError(ApiError):
    """An error of the queue route or of ``dispatch()``, in the mirror's error shape;
    ``headers`` (``Retry-After`` on a 503) go with it."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, code)
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return json_error(self.status, self.message, self.code, self.headers or None)


@contextlib.contextmanager
def _mirror_shaped() -> Iterator[None]:
    """Errors of the parts shared with ``/booking/v1`` (keys, query rules, fills,
    write-through) as ``QueueError``: same status, message and headers."""
    try:
        yield
    except BooxiShapedError as error:
        raise QueueError(error.status, error.message, headers=error.headers) from None
    except BooxiError as error:
        shaped = refused(error, "this request")
        raise QueueError(shaped.status, shaped.message, headers=shaped.headers) from None


# ---- the route ----------------------------------------------------------------------


async def get_queue(request: web.Request) -> web.Response:
    """``GET /mirror/v1/stores/{merchantId}/queue``."""
    try:
        caller = _caller(request, "read")
        merchant_id = _merchant_id(request.match_info["merchantId"])
        query = Query(request.query)
        with _mirror_shaped():
            if query.has_cursor():
                saved, position = query.cursor(request, CURSOR_KIND)
                if saved.get("merchantId") != merchant_id:
                    raise QueueError(400, "cursor is not valid for this store")
                start, end = str(saved["from"]), str(saved["to"])
                after: tuple[str, str] | None = (str(position[0]), str(position[1]))
            else:
                start, end = _range(request, query)
                after = None
        size = request.app[CONFIG].api.page_size
        fields, freshness, last = await _read(request, caller, merchant_id, start, end, after, size)
        if last is not None:
            saved = {"merchantId": merchant_id, "from": start, "to": end}
            fields["cursor"] = cursor_text(encode_cursor(request, CURSOR_KIND, saved, list(last)))
        return answer(fields, freshness, request)
    except QueueError as error:
        return error.response()


# ---- the interface of the dashboard ----------------------------------------------------


async def queue_answer(
    request: web.Request, merchant_id: int, start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    """The queue route's JSON body for ``merchant_id``, with ``start``/``end`` as its
    ``from``/``to`` (RFC 3339 text; None: the defaults).

    **All** the queue's items in one body (``"cursor": null``): the route's body when
    the queue fits in one page (``[api] page_size``), its pages put together otherwise.
    The caller is ``principal(request)`` (set by the key middleware or an earlier call),
    else the API key in the request's headers; the same checks as the route (a partner
    key with the ``read`` scope that sees the store: 404 otherwise), the same errors:
    ``QueueError`` (an ``api.errors.ApiError``; ``.response()`` answers it in the
    mirror's error shape)."""
    caller = _caller(request, "read")
    if isinstance(merchant_id, bool) or not isinstance(merchant_id, int):
        raise QueueError(400, f"merchantId must be an integer, got {merchant_id!r}")
    _merchant_id(str(merchant_id))
    given: MultiDict[str] = MultiDict()
    if start is not None:
        given["from"] = start
    if end is not None:
        given["to"] = end
    with _mirror_shaped():
        lo, hi = _range(request, Query(given))
    fields, _freshness, _last = await _read(request, caller, merchant_id, lo, hi, None, None)
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"
    parsed: dict[str, Any] = json.loads(body)
    return parsed


async def dispatch(
    request: web.Request,
    booking_id: str | int,
    *,
    staff_id: int | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Assign a request to ``staff_id`` and/or set its ``status``: ``Approved`` to
    approve, ``Cancelled`` to decline (Booxi has no "declined" status: a merchant
    declines by cancelling, booxi-api.md's "Cancelled by merchant"), or either pending
    status. Exactly ``PUT /booking/v1/booking/{booking_id}`` through the mirror with the
    body ``{"staffId": ..., "status": ...}`` (the fields given): the same checks (a
    partner key with the ``write`` scope that sees the booking's store and the staff
    member's: 404/403 otherwise), forwarded to Booxi once, Booxi's answer stored before
    this returns, so the queue and the staff member's calendar show it at once.

    Returns the updated booking object as Booxi answered it (unwrapped when Booxi wraps
    it in ``{"booking", "groupEvents"}``), which is what the mirror now serves. Booxi's
    refusals raise ``QueueError`` with Booxi's status and a readable message: 409 when
    the staff member is busy then (``"BookingConflict: staff 12 is not free from ..."``),
    400 for a bad value, 404 for an unknown booking; 503 when Booxi is unreachable."""
    caller = _caller(request, "write")
    del caller  # checked; the write path reads it from the request again
    ident = str(booking_id)
    try:
        check_booking_id("bookingId", ident)
    except ValueError as error:
        raise QueueError(400, str(error)) from None
    data: dict[str, object] = {}
    if staff_id is not None:
        if isinstance(staff_id, bool) or not isinstance(staff_id, int) or not 0 < staff_id < MAX_ID:
            raise QueueError(400, f"staffId must be a positive integer, got {staff_id!r}")
        data["staffId"] = staff_id
    if status is not None:
        if status not in BOOKING_STATUSES:
            raise QueueError(
                400, f"status must be one of {', '.join(BOOKING_STATUSES)}, got {status!r}"
            )
        data["status"] = status
    if not data:
        raise QueueError(400, "give staff_id, status or both")
    body = json.dumps(data).encode()
    with _mirror_shaped():
        response = await writes.put_booking(request, ident, body, data)
    raw = response.body if isinstance(response, web.Response) else None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if 200 <= response.status <= 299:
        wrapped = parsed.get("booking") if isinstance(parsed, dict) else None
        booking = wrapped if isinstance(wrapped, dict) else parsed
        if not isinstance(booking, dict):
            raise QueueError(502, f"Booxi's answer for booking {ident} could not be read")
        return booking
    raise QueueError(response.status, _readable(parsed, response.status), headers=_retry(response))


def _readable(parsed: object, status: int) -> str:
    """Booxi's error as one line: ``"<error>: <message>"`` (``error`` names a conflict)."""
    if isinstance(parsed, dict):
        message = str(parsed.get("message") or f"Booxi answered {status}")
        name = parsed.get("error")
        return f"{name}: {message}" if isinstance(name, str) and name else message
    return f"Booxi answered {status}"


def _retry(response: web.StreamResponse) -> dict[str, str]:
    wait = response.headers.get("Retry-After")
    return {"Retry-After": wait} if wait else {}


# ---- shared -----------------------------------------------------------------------------


def _caller(request: web.Request, scope: str) -> Principal:
    """The key's principal (authenticated here when no middleware did), allowed on this
    route (a merchant key is not) and with ``scope``."""
    with _mirror_shaped():
        caller = request.get(PRINCIPAL_KEY)
        if caller is None:
            caller = authenticate(request.app[CONFIG].api.keys, request)
            request[PRINCIPAL_KEY] = caller
        caller.require_route(ROUTE_NAME)
        caller.require(scope)
    return caller


def _merchant_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 16 or not 0 < int(raw) < MAX_ID:
        raise QueueError(400, f"merchantId must be a positive integer, got {raw!r}")
    return int(raw)


def _range(request: web.Request, query: Query) -> tuple[str, str]:
    """``from``/``to`` as stored keys; 400 unless RFC 3339 and ``to`` not before ``from``."""
    now = utcnow()
    start = query.instant("from") or now
    horizon = now + dt.timedelta(days=request.app[CONFIG].sync.horizon_days)
    end = query.instant("to") or max(horizon, start)
    if end < start:
        raise BooxiShapedError(400, "to must not be before from")
    return instant_key(start), instant_key(end)


async def _read(
    request: web.Request,
    caller: Principal,
    merchant_id: int,
    start: str,
    end: str,
    after: tuple[str, str] | None,
    size: int | None,
) -> tuple[dict[str, str], Freshness, tuple[str, str] | None]:
    """The answer's fields (JSON texts), its freshness, and the last item's key when
    more follow. 404 for a store the key does not see or the mirror does not know."""
    reader = request.app[READER]
    if not caller.sees(merchant_id) or not await reader.run(_store_known, merchant_id):
        raise QueueError(404, f"Merchant {merchant_id} not found")
    filled = await _cover(request, merchant_id)
    page = await reader.run(store_queue.queue_page, merchant_id, start, end, after, size)
    sync = await reader.run(_queue_sync, merchant_id)
    freshness = Freshness(None, failing=True)
    if sync is not None:
        success, failures, window_start, window_end = sync
        partial = (
            window_start is None
            or window_end is None
            or start < instant_key(stored_utc(window_start))
            or end > instant_key(stored_utc(window_end))
        )
        freshness = Freshness(
            stored_utc(success) if success is not None else None,
            failing=bool(failures),
            filled=filled,
            partial=partial,
        )
    fields = {
        "bookings": array(page.bookings),
        "services": array(page.services),
        "staff": array(page.staff),
        "merchants": array(page.merchants),
        "cursor": cursor_text(None),
    }
    return fields, freshness, page.last


async def _cover(request: web.Request, merchant_id: int) -> bool:
    """A store whose queue no poll has tried yet is fetched from Booxi now (once: a
    failure is recorded, and the answer then says stale). Whether Booxi was asked."""
    reader = request.app[READER]
    if request.app.get(BOOXI) is None:
        return False

    async def attempted() -> bool:
        return await reader.run(_queue_sync, merchant_id) is not None

    async def fetch(booxi: BooxiClient) -> None:
        window = Window.around(utcnow(), request.app[CONFIG].sync.horizon_days)
        await poll_store_queue(booxi, request.app[WRITER], merchant_id, window, fill=True)

    try:
        return await fill(
            request,
            store_queue.queue_scope(merchant_id),
            attempted,
            fetch,
            what=f"Merchant {merchant_id}'s queue",
        )
    except BooxiShapedError:  # served as held, marked stale (the failure is recorded)
        return False


def _store_known(conn: ReadConnection, merchant_id: int) -> bool:
    row = conn.execute("SELECT 1 FROM merchant WHERE id = ?", (merchant_id,)).fetchone()
    return row is not None


def _queue_sync(conn: ReadConnection, merchant_id: int) -> tuple[Any, int, Any, Any] | None:
    """(last_success_at, consecutive_failures, window_start, window_end) of the queue."""
    row = conn.execute(
        "SELECT last_success_at, consecutive_failures, window_start, window_end "
        "FROM sync_state WHERE scope = ?",
        (store_queue.queue_scope(merchant_id),),
    ).fetchone()
    return (row[0], row[1], row[2], row[3]) if row else None
