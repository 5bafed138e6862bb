"""``GET /booking/v1/calendar``: a staff member's calendar, as Booxi answers it.

Booxi's parameters and envelope (repeated ``eventType``/``include``, cursor-only
follow-ups, an inclusive range, every key always present). Unlike Booxi, the mirror
also answers ranges more than 7 days back, from what it has kept. A range the mirror
does not cover (a staff member not polled yet, beyond the horizon) is fetched from
Booxi first; when Booxi cannot be reached then, the answer is a 503, never a partial
calendar presented as complete.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import principal
from api.booxi_shape import BooxiShapedError, bad_request, not_found, unavailable
from api.freshness import Freshness
from api.keys import BOOXI, CONFIG, READER, WRITER
from api.query import Query, encode_cursor
from api.reading import answer, array, cursor_text, fill_lock
from mirror.booxi_errors import BooxiError, BooxiNotFound, BooxiUnavailable
from mirror.fill import fill_calendar
from storage import coverage, reads
from storage.sync_state import staff_scope
from storage.times import instant_key, parse_instant

EVENT_TYPES = ("Appointment", "GroupEvent", "TimeSlot")
INCLUDES = ("None", "Appointment", "GroupEvent", "TimeSlot", "Staff", "Service")


async def get_calendar(request: web.Request) -> web.Response:
    query = Query(request.query)
    reader = request.app[READER]
    caller = principal(request)
    after: tuple[str, int] | None = None
    if query.has_cursor():
        saved, position = query.cursor("calendar")
        try:
            staff_id = int(saved["staffId"])
            start, end = parse_instant(saved["from"]), parse_instant(saved["to"])
            types, includes = list(saved["eventType"]), list(saved["include"])
            after = (str(position[0]), int(position[1]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise bad_request("cursor is not valid for this endpoint") from None
    else:
        staff_id = query.integer("staffId", required=True) or 0
        start = query.required_instant("from")
        end = query.required_instant("to")
        types = query.choices("eventType", EVENT_TYPES, required=True)
        includes = query.choices("include", INCLUDES, required=True)
        query.text("language")
        if end < start:
            raise bad_request("to must not be before from")
    lo, hi = instant_key(start), instant_key(end)
    size = request.app[CONFIG].api.page_size
    args = (staff_id, lo, hi, types, includes, after, size)
    read = await reader.run(reads.calendar_read, *args)
    if read.merchant is False and caller.merchant_ids is not None:
        raise not_found("Staff", staff_id)  # a store-bound key never fetches unknown staff
    if read.merchant is not False and not caller.sees(read.merchant):
        raise not_found("Staff", staff_id)
    freshness = Freshness(read.covered.synced_at)
    if read.page is None:  # not covered: fill from Booxi, then read again
        freshness = await _cover(request, staff_id, lo, hi)
        read = await reader.run(reads.calendar_read, *args)
        if read.merchant is False or not caller.sees(read.merchant) or read.page is None:
            raise not_found("Staff", staff_id)
    freshness = freshness.merged(Freshness.of_sync_rows(read.sync, fallback=freshness.synced_at))
    page = read.page
    cursor = None
    if page.last is not None:
        saved_query = {
            "staffId": staff_id,
            "from": lo,
            "to": hi,
            "eventType": types,
            "include": includes,
        }
        cursor = encode_cursor("calendar", saved_query, list(page.last))
    return answer(
        {
            "calendarEvents": array(page.events),
            "bookings": array(page.bookings),
            "groupEvents": array(page.group_events),
            "services": array(page.services),
            "staff": page.staff or "null",
            "timeSlots": array(page.time_slots),
            "cursor": cursor_text(cursor),
        },
        freshness,
        request,
    )


async def _cover(request: web.Request, staff_id: int, lo: str, hi: str) -> Freshness:
    """Make sure the mirror covers the range (fetching the gaps from Booxi); its freshness."""
    reader = request.app[READER]
    scope = staff_scope(staff_id)
    covered = await reader.run(coverage.read_coverage, scope, lo, hi)
    if covered.complete:
        return Freshness(covered.synced_at)
    async with fill_lock(request, scope):
        covered = await reader.run(coverage.read_coverage, scope, lo, hi)
        if covered.complete:
            return Freshness(covered.synced_at)
        booxi = request.app.get(BOOXI)
        if booxi is None:
            raise unavailable("this mirror has no Booxi connection to fill the calendar from")
        try:
            complete = await fill_calendar(booxi, request.app[WRITER], staff_id, covered.gaps)
        except BooxiNotFound:
            raise not_found("Staff", staff_id) from None
        except BooxiUnavailable:
            raise unavailable(
                "the mirror does not hold this range yet and Booxi is unreachable: try again later"
            ) from None
        except BooxiError as error:
            raise BooxiShapedError(502, f"Booxi refused to fill this calendar: {error}") from None
    covered = await reader.run(coverage.read_coverage, scope, lo, hi)
    return Freshness(covered.synced_at, filled=True, partial=not complete)
