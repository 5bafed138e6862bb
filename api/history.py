"""``GET /booking/v1/booking`` (a client's history) and ``GET /booking/v1/booking/{id}``.

History: Booxi's parameters (``clientId`` required; ``from``/``to`` on ``startsOn``,
inclusive; ``merchantId``; repeated ``bookingMethod``; ``order``) and envelope
(``bookings``, ``groupEvents``, ``services``, ``staff``, ``merchants``, ``resources``,
``cursor``). The first read of a client's history fetches it from Booxi once, as
Booxi's guide says (``clientId`` with an explicit ``from``/``to``, over the span of
``mirror.fill.history_span``; a client's past predates the mirror); later ones are local,
kept fresh by polls and webhooks. A range starting before what was fetched fetches the
missing part first. A store-bound key sees the client's bookings at its stores only, and a
client with none there is "not found" to it.
"""

from __future__ import annotations

import json

from aiohttp import web

from api import ready, upstream
from api.auth import principal
from api.booxi_shape import bad_request, not_found
from api.freshness import Freshness
from api.keys import CONFIG, READER, WRITER
from api.query import Query, encode_cursor
from api.reading import answer, array, cursor_text
from mirror.client import BooxiClient
from mirror.fill import fill_booking, fill_client_history, history_span
from mirror.vocabulary import BOOKING_METHODS, ORDERS
from storage import coverage, reads
from storage.times import instant_key, parse_instant, utcnow


async def list_bookings(request: web.Request) -> web.Response:
    kept = await ready.lookup(request)
    if kept is not None:
        return kept
    query = Query(request.query)
    reader = request.app[READER]
    caller = principal(request)
    after: tuple[str, str] | None = None
    if query.has_cursor():
        saved, position = query.cursor(request, "booking")
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
            methods=tuple(query.choices("bookingMethod", BOOKING_METHODS)),
            descending=query.choice("order", ORDERS, "Ascending") == "Descending",
        )
        query.text("language")
    if after is None:
        freshness = await _cover(request, history.client_id, history.start)
    else:  # a later page: no fill, but the same freshness as the first
        scope = history_scopes(history.client_id, caller.merchant_ids)[0]
        held = await reader.run(coverage.read_coverage, scope, "", "~")
        freshness = Freshness(held.synced_at)
    size = request.app[CONFIG].api.page_size
    page = await reader.run(reads.history_page, history, caller.merchant_ids, after, size)
    if not page.bookings and after is None:
        visible = await reader.run(
            reads.history_page,
            reads.HistoryQuery(history.client_id, None, None, None, (), False),
            caller.merchant_ids,
            None,
            1,
        )
        if not visible.bookings and (
            caller.merchant_ids is not None  # a store-bound key: none at its stores
            or not (freshness.filled or await reader.run(reads.client_known, history.client_id))
        ):
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
        cursor = encode_cursor(request, "booking", saved_query, list(page.last))
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
        tags=[
            ready.Tag(f"client:{history.client_id}"),  # its bookings, by client_id
            ready.Tag(f"cover:client:{history.client_id}"),
            ready.Tag("ref"),
            *(ready.Tag(f"sync:staff:{s}") for s in page.staff_ids),
            *(ready.Tag(f"group:{g}") for g in page.group_ids),
        ],
    )


def history_scopes(client_id: int, stores: frozenset[int] | None) -> list[str]:
    """The coverage scopes a key's view of a client's history rests on: the whole
    history, or (a store-bound key) each of its stores' part of it."""
    if stores is None:
        return [coverage.client_scope(client_id)]
    return [f"{coverage.client_scope(client_id)}@{m}" for m in sorted(stores)]


async def _cover(request: web.Request, client_id: int, start: str | None) -> Freshness:
    """Make sure the mirror holds the client's history from ``start`` (or the default
    span's start) on, fetching what it lacks from Booxi (``mirror.fill.history_span``).

    Coverage runs to ``"~"`` (every future instant): once fetched, a history is kept
    current by polls and webhooks. A store-bound key fetches its stores' part only
    (``merchantId`` per store) and stores nothing of other stores."""
    reader = request.app[READER]
    config = request.app[CONFIG]
    stores = principal(request).merchant_ids
    first, last = history_span(
        utcnow(),
        history_days=config.sync.history_days,
        retention_days=config.privacy.retention_days,
        horizon_days=config.sync.horizon_days,
    )
    lo = min(start, instant_key(first)) if start is not None else instant_key(first)
    whole = coverage.client_scope(client_id)

    async def gaps() -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        found = await reader.run(coverage.read_coverage, whole, lo, "~")
        if found.complete:
            return []
        missing = []
        for scope in history_scopes(client_id, stores):
            found = await reader.run(coverage.read_coverage, scope, lo, "~")
            if not found.complete:
                missing.append((scope, found.gaps))
        return missing

    async def covered() -> bool:
        return not await gaps()

    async def fetch(booxi: BooxiClient) -> None:
        for scope, holes in await gaps():
            merchant = None if stores is None else [int(scope.rpartition("@")[2])]
            for hole_start, hole_end in holes:
                fetch_end = last if hole_end == "~" else parse_instant(hole_end)
                await fill_client_history(
                    booxi,
                    request.app[WRITER],
                    client_id,
                    parse_instant(hole_start),
                    fetch_end,
                    scope=scope,
                    covers=(hole_start, hole_end),
                    merchant_ids=merchant,
                )

    filled = await upstream.fill(
        request, f"history:{client_id}", covered, fetch, what=f"Client {client_id}'s history"
    )
    synced = []
    for scope in [whole, *history_scopes(client_id, stores)]:
        found = await reader.run(coverage.read_coverage, scope, lo, "~")
        if found.complete:
            synced.append(found.synced_at)
            break
    return Freshness(synced[0] if synced else None, filled=filled)


async def get_booking(request: web.Request) -> web.Response:
    kept = await ready.lookup(request)
    if kept is not None:
        return kept
    booking_id = request.match_info["bookingId"]
    Query(request.query).text("language")
    if not booking_id or len(booking_id) > 64:
        raise bad_request("bookingId must be 1 to 64 characters")
    reader = request.app[READER]
    caller = principal(request)
    found, sync = await reader.run(reads.booking_with_sync, booking_id)
    filled = False
    if found is None:  # not mirrored (yet): ask Booxi once; stored only if the key sees it

        async def held() -> bool:
            return await reader.run(reads.booking_with_group_events, booking_id) is not None

        async def fetch(booxi: BooxiClient) -> None:
            await fill_booking(booxi, request.app[WRITER], booking_id, keep=caller.sees)

        what = f"Booking {booking_id}"
        filled = await upstream.fill(request, f"booking:{booking_id}", held, fetch, what=what)
        found, sync = await reader.run(reads.booking_with_sync, booking_id)
    if found is None or not caller.sees(found[1]):
        raise not_found("Booking", booking_id)
    raw, _merchant, staff_id, groups = found
    freshness = Freshness.of_sync_rows(sync)
    if filled:
        freshness = Freshness(freshness.synced_at, filled=True)
    tags = [
        ready.Tag(f"booking:{booking_id}"),
        *(ready.Tag(f"sync:staff:{s}") for s in ([staff_id] if staff_id else [])),
        *(ready.Tag(f"group:{json.loads(g).get('id')}") for g in groups),
    ]
    return answer({"booking": raw, "groupEvents": array(groups)}, freshness, request, tags=tags)
