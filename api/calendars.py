"""``GET /booking/v1/calendar``: a staff member's calendar, as Booxi answers it.

Booxi's parameters and envelope (repeated ``eventType``/``include``, cursor-only
follow-ups, an inclusive range, every key always present). A range the mirror does
not cover (a staff member not polled yet, beyond the horizon) is fetched from Booxi
first (``api.upstream.fill``); Booxi's refusals map as ``api.upstream`` says, never a
partial calendar presented as complete. A staff member the mirror does not know is
asked of Booxi (``GET /staff/{id}``) and served only to a key that sees their store.

**choice** (coverage edge): unlike Booxi, which refuses a ``from`` more than 7 days
back with a 400, the mirror answers such a range with what it holds: whatever it has
kept from earlier polls, plus ``X-Mirror-Coverage: partial`` and
``X-Mirror-Covered-From: <instant>`` (the start of the part it vouches for) when the
range reaches further back than that. A known staff member is never "not found"
because of coverage.

Calendar event ids are Booxi's: events derived from a booking that came by webhook or
write (provisional ids) make the read ask Booxi's calendar first (``mirror.repoll``);
if Booxi cannot answer, those events go out with ``"id": null``, never a made-up id.
"""

from __future__ import annotations

import json

from aiohttp import web

from api import ready, upstream
from api.auth import principal
from api.booxi_shape import bad_request, not_found
from api.freshness import Freshness
from api.keys import CONFIG, READER, REPOLL, WRITER
from api.query import Query, encode_cursor
from api.reading import answer, array, cursor_text
from mirror.client import BooxiClient
from mirror.fill import fill_calendar, fill_staff
from mirror.vocabulary import EVENT_TYPES, INCLUDES
from storage import coverage, reads
from storage.sync_state import staff_scope
from storage.times import instant_key, parse_instant, wire_instant


async def get_calendar(request: web.Request) -> web.Response:
    kept = await ready.lookup(request)
    if kept is not None:
        return kept
    query = Query(request.query)
    reader = request.app[READER]
    caller = principal(request)
    after: tuple[str, int] | None = None
    if query.has_cursor():
        saved, position = query.cursor(request, "calendar")
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
    if read.merchant is False:  # a staff member the mirror does not know (yet)
        await _learn_staff(request, staff_id)
        read = await reader.run(reads.calendar_read, *args)
    if read.merchant is False or not caller.sees(read.merchant):
        raise not_found("Staff", staff_id)
    freshness = Freshness(read.covered.synced_at)
    covered_from: str | None = None
    if read.page is None:  # not covered: fill from Booxi, then read again
        freshness, covered_from = await _cover(request, staff_id, lo, hi)
        read = await reader.run(reads.calendar_read, *args, True)
    page = read.page
    if page is None:  # pragma: no cover - the staff member is known and partial is asked
        raise not_found("Staff", staff_id)
    complete = not page.provisional and covered_from is None
    if page.provisional:
        page = await _settled(request, staff_id, args, page)
    freshness = freshness.merged(Freshness.of_sync_rows(read.sync, fallback=freshness.synced_at))
    cursor = None
    if page.last is not None:
        saved_query = {
            "staffId": staff_id,
            "from": lo,
            "to": hi,
            "eventType": types,
            "include": includes,
        }
        cursor = encode_cursor(request, "calendar", saved_query, list(page.last))
    response = answer(
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
        tags=_tags(staff_id, lo, hi, page) if complete else None,
    )
    if covered_from is not None:
        response.headers["X-Mirror-Covered-From"] = covered_from
    return response


def _tags(staff_id: int, lo: str, hi: str, page: reads.CalendarPage) -> list[ready.Tag]:
    """What a calendar page is built from (``storage.changes``): the staff member's
    events, slots and bookings over the range, its coverage and sync state, reference
    data (the staff member, services), and each booking and group event it shows (a
    reservation's booking may be another staff member's)."""
    return [
        ready.Tag(f"staff:{staff_id}", lo, hi),
        ready.Tag(f"cover:staff:{staff_id}", lo, hi),
        ready.Tag(f"sync:staff:{staff_id}"),
        ready.Tag("ref"),
        *(ready.Tag(f"booking:{b}") for b in page.booking_ids),
        *(ready.Tag(f"group:{g}") for g in page.group_ids),
    ]


async def _learn_staff(request: web.Request, staff_id: int) -> None:
    """A staff member the mirror does not know: ask Booxi who they are; stored only when
    they work at one of the key's stores (404 otherwise, nothing stored)."""
    caller = principal(request)

    async def known() -> bool:
        return await request.app[READER].run(reads.staff_merchant, staff_id) is not False

    async def fetch(booxi: BooxiClient) -> None:
        await fill_staff(booxi, request.app[WRITER], staff_id, keep=caller.sees)

    await upstream.fill(request, f"staff-info:{staff_id}", known, fetch, what=f"Staff {staff_id}")


async def _cover(
    request: web.Request, staff_id: int, lo: str, hi: str
) -> tuple[Freshness, str | None]:
    """Make sure the mirror covers the range (fetching the gaps from Booxi); its freshness,
    and where the covered part starts when the range reaches further back than anything
    the mirror holds and than Booxi serves (None when it is covered whole)."""
    reader = request.app[READER]
    scope = staff_scope(staff_id)
    complete = True

    async def covered() -> bool:
        found = await reader.run(coverage.read_coverage, scope, lo, hi)
        return found.complete

    async def fetch(booxi: BooxiClient) -> None:
        nonlocal complete
        gaps = (await reader.run(coverage.read_coverage, scope, lo, hi)).gaps
        complete = await fill_calendar(booxi, request.app[WRITER], staff_id, gaps)

    filled = await upstream.fill(request, scope, covered, fetch, what=f"Staff {staff_id}")
    found = await reader.run(coverage.read_coverage, scope, lo, hi)
    covered_from = None
    if not found.complete:
        covered_from = found.gaps[0][1] if found.gaps[0][0] == lo else lo
        covered_from = wire_instant(covered_from)
    return Freshness(found.synced_at, filled=filled, partial=not complete), covered_from


async def _settled(
    request: web.Request, staff_id: int, args: tuple[object, ...], page: reads.CalendarPage
) -> reads.CalendarPage:
    """A page holding provisional events (a booking that came by webhook or write): ask
    Booxi's calendar for its ids now; if it cannot answer, the events go out with
    ``"id": null`` rather than an id the mirror made up."""
    repoller = request.app.get(REPOLL)
    lo, hi = parse_instant(str(args[1])), parse_instant(str(args[2]))
    if repoller is not None and await repoller.settle(staff_id, lo, hi):
        page = await request.app[READER].run(reads.calendar_page, *args)
        if not page.provisional:
            return page
    page.events = [_without_provisional_id(raw) for raw in page.events]
    return page


def _without_provisional_id(raw: str) -> str:
    event = json.loads(raw)
    if isinstance(event.get("id"), int) and event["id"] < 0:
        event["id"] = None
        return json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return raw
