"""``GET /booking/v1/booking`` (a client's history) and ``GET /booking/v1/booking/{id}``.

History: Booxi's parameters (``clientId`` required; ``from``/``to`` on ``startsOn``,
inclusive; ``merchantId``; repeated ``bookingMethod``; ``order``) and envelope
(``bookings``, ``groupEvents``, ``services``, ``staff``, ``merchants``, ``resources``,
``cursor``). The first read of a client's history fetches it all from Booxi once (a
client's past predates the mirror); later ones are local, kept fresh by polls and
webhooks. A store-bound key sees the client's bookings at its stores only, and a
client with none there is "not found" to it.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import principal
from api.booxi_shape import bad_request, not_found, unavailable
from api.freshness import Freshness
from api.keys import BOOXI, CONFIG, READER, WRITER
from api.query import Query, encode_cursor
from api.reading import answer, array, cursor_text, fill_lock
from mirror.booxi_errors import BooxiNotFound, BooxiUnavailable
from mirror.fill import fill_booking, fill_client_history
from storage import coverage, reads
from storage.times import instant_key

METHODS = ("Appointment", "GroupReservation", "Rental")
ORDERS = ("Ascending", "Descending")


async def list_bookings(request: web.Request) -> web.Response:
    query = Query(request.query)
    reader = request.app[READER]
    caller = principal(request)
    after: tuple[str, str] | None = None
    if query.has_cursor():
        saved, position = query.cursor("booking")
        try:
            history = reads.HistoryQuery(
                client_id=int(saved["clientId"]),
                merchant_id=saved["merchantId"],
                start=saved["from"],
                end=saved["to"],
                methods=tuple(saved["bookingMethod"]),
                descending=bool(saved["descending"]),
            )
            after = (str(position[0]), str(position[1]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise bad_request("cursor is not valid for this endpoint") from None
    else:
        start, end = query.instant("from"), query.instant("to")
        if start and end and end < start:
            raise bad_request("to must not be before from")
        history = reads.HistoryQuery(
            client_id=query.integer("clientId", required=True) or 0,
            merchant_id=query.integer("merchantId"),
            start=instant_key(start) if start else None,
            end=instant_key(end) if end else None,
            methods=tuple(query.choices("bookingMethod", METHODS)),
            descending=query.choice("order", ORDERS, "Ascending") == "Descending",
        )
        query.text("language")
    freshness = await _cover(request, history.client_id, first_page=after is None)
    size = request.app[CONFIG].api.page_size
    page = await reader.run(reads.history_page, history, caller.merchant_ids, after, size)
    if not page.bookings and after is None and caller.merchant_ids is not None:
        visible = await reader.run(
            reads.history_page,
            reads.HistoryQuery(history.client_id, None, None, None, (), False),
            caller.merchant_ids,
            None,
            1,
        )
        if not visible.bookings:
            raise not_found("Client", history.client_id)
    sync = await reader.run(reads.staff_sync, page.staff_ids)
    freshness = freshness.merged(Freshness.of_sync_rows(sync, fallback=freshness.synced_at))
    cursor = None
    if page.last is not None:
        saved_query = {
            "clientId": history.client_id,
            "merchantId": history.merchant_id,
            "from": history.start,
            "to": history.end,
            "bookingMethod": list(history.methods),
            "descending": history.descending,
        }
        cursor = encode_cursor("booking", saved_query, list(page.last))
    return answer(
        {
            "bookings": array(page.bookings),
            "groupEvents": array(page.group_events),
            "services": array(page.services),
            "staff": array(page.staff),
            "merchants": array(page.merchants),
            "resources": "[]",
            "cursor": cursor_text(cursor),
        },
        freshness,
        request,
    )


async def _cover(request: web.Request, client_id: int, *, first_page: bool) -> Freshness:
    reader = request.app[READER]
    scope = coverage.client_scope(client_id)
    covered = await reader.run(coverage.read_coverage, scope, *coverage.WHOLE)
    if covered.complete or not first_page:
        if not covered.complete and not await reader.run(reads.client_known, client_id):
            raise not_found("Client", client_id)
        return Freshness(covered.synced_at)
    async with fill_lock(request, scope):
        covered = await reader.run(coverage.read_coverage, scope, *coverage.WHOLE)
        if covered.complete:
            return Freshness(covered.synced_at)
        booxi = request.app.get(BOOXI)
        if booxi is None:
            raise unavailable("this mirror has no Booxi connection to fetch the history from")
        try:
            await fill_client_history(booxi, request.app[WRITER], client_id)
        except BooxiNotFound:
            raise not_found("Client", client_id) from None
        except BooxiUnavailable:
            raise unavailable(
                "the mirror does not hold this client's history yet and Booxi "
                "is unreachable: try again later"
            ) from None
    covered = await reader.run(coverage.read_coverage, scope, *coverage.WHOLE)
    return Freshness(covered.synced_at, filled=True)


async def get_booking(request: web.Request) -> web.Response:
    booking_id = request.match_info["bookingId"]
    Query(request.query).text("language")
    if not booking_id or len(booking_id) > 64:
        raise bad_request("bookingId must be 1 to 64 characters")
    reader = request.app[READER]
    caller = principal(request)
    found = await reader.run(reads.booking_with_group_events, booking_id)
    filled = False
    if found is None and caller.merchant_ids is None:  # not mirrored (yet): ask Booxi once
        booxi = request.app.get(BOOXI)
        if booxi is not None:
            try:
                await fill_booking(booxi, request.app[WRITER], booking_id)
            except BooxiNotFound:
                raise not_found("Booking", booking_id) from None
            except BooxiUnavailable:
                raise unavailable(
                    "the mirror does not hold this booking and Booxi is "
                    "unreachable: try again later"
                ) from None
            filled = True
            found = await reader.run(reads.booking_with_group_events, booking_id)
    if found is None or not caller.sees(found[1]):
        raise not_found("Booking", booking_id)
    raw, _merchant, staff_id, groups = found
    sync = await reader.run(reads.staff_sync, [staff_id] if staff_id else [])
    freshness = Freshness.of_sync_rows(sync)
    if filled:
        freshness = Freshness(freshness.synced_at, filled=True)
    return answer({"booking": raw, "groupEvents": array(groups)}, freshness, request)
