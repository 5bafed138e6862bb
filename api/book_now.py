"""Booxi's "Book Now" routes: ``GET /merchant``, ``GET /staff``, ``GET /service`` and
``GET /serviceCategory``, what a booking form asks with a store's public key.

The lists are offset-paged like Booxi's (``{offset, limit, total, items}``, numbers;
``limit`` 1 to 100, ``[api] page_size`` by default), sorted by id, and served from the
mirror's reference data: ``/staff`` the store's ``Online`` staff (``serviceId``: those
who perform it), ``/service`` its ``Online`` services (``staffId``: those the staff
member performs; ``bookingMethod``: exact; ``keywords``: case-insensitive, in the name),
``/serviceCategory`` its categories, ``/merchant`` the store itself (bare).

Which store (**choice**): the ``merchantId`` parameter; without it, the key's store
when the key is bound to exactly one (always so for a merchant key, as Booxi answers
the public key's store); otherwise 400 ``merchantId is required``. A store the key
does not see is a 404, as an unknown one is.

Where the data comes from (``mirror.book_now`` says how each fill asks Booxi):

- the store's reference data: kept by the poller for the stores it polls (``[sync]
  merchant_ids``, or every store when that is empty); another store's is fetched from
  Booxi on first demand and again once older than ``[sync] reference_interval_s``;
- ``serviceId`` and ``staffId``: who performs what is not in the partner lists the
  poller reads, so Booxi's own Book Now list with that filter is asked (every page) and
  kept per service and per staff member, asked again once older than
  ``reference_interval_s``. A service or staff member the mirror holds at another store
  gives an empty list without asking Booxi (as Booxi does).

When Booxi cannot be reached for a refresh of something the mirror holds, the answer
is what it holds, marked stale; for something it does not hold, a 503. Objects are
served as the mirror holds them (the partner lists' objects); **note**: Booxi's Book
Now objects may carry fewer fields than the partner lists' (not public), so a frontend
using a merchant key may see more fields through the mirror than through Booxi.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from aiohttp import web

from api import upstream
from api.auth import principal
from api.booxi_shape import bad_request, not_found
from api.freshness import Freshness
from api.keys import CONFIG, READER, WRITER
from api.query import Query
from api.reading import answer, array
from mirror import book_now as fills
from mirror.client import BooxiClient
from mirror.poller import REFERENCE_SCOPE
from mirror.vocabulary import BOOKING_METHODS
from storage import book_now, coverage, reads
from storage.times import utcnow

MAX_LIMIT = 100
Check = Callable[[], Awaitable[bool]]
Fetch = Callable[[BooxiClient], Awaitable[None]]


async def covered_at(request: web.Request, scope: str) -> dt.datetime | None:
    """When ``scope`` was last fetched whole from Booxi; None if never."""
    found = await request.app[READER].run(coverage.read_coverage, scope, *coverage.WHOLE)
    return found.synced_at if found.complete else None


def young(request: web.Request, moment: dt.datetime | None) -> bool:
    """Fetched within ``[sync] reference_interval_s``."""
    limit = request.app[CONFIG].sync.reference_interval_s
    return moment is not None and (utcnow() - moment).total_seconds() <= limit


def store_of_request(request: web.Request, query: Query) -> int:
    """The store a Book Now request is about (see the module doc)."""
    caller = principal(request)
    merchant_id = query.integer("merchantId")
    if merchant_id is None:
        single = caller.single_store
        if single is None:
            raise bad_request("merchantId is required")
        return single
    if not caller.sees(merchant_id):
        raise not_found("Merchant", merchant_id)
    return merchant_id


async def store_data(request: web.Request, merchant_id: int) -> Freshness:
    """Make sure the mirror holds the store's reference data; its freshness."""
    reader, config = request.app[READER], request.app[CONFIG]
    scope = fills.store_scope(merchant_id)
    polled = not config.sync.merchant_ids or merchant_id in config.sync.merchant_ids

    async def held() -> bool:
        return await reader.run(reads.one, "merchant", merchant_id) is not None

    async def fresh() -> bool:
        if not await held():
            return False
        return polled or young(request, await covered_at(request, scope))

    async def fetch(booxi: BooxiClient) -> None:
        await fills.fill_store(booxi, request.app[WRITER], merchant_id)

    what = f"Merchant {merchant_id}"
    filled, failing = await upstream.fill_or_held(request, scope, fresh, held, fetch, what=what)
    fetched = await covered_at(request, scope)
    if polled:
        state = await reader.run(reads.scope_sync, REFERENCE_SCOPE)
        freshness = Freshness.of_sync_rows([state] if state else [], fallback=fetched)
    else:
        freshness = Freshness(fetched)
    return Freshness(freshness.synced_at, freshness.failing or failing, filled)


async def relation(
    request: web.Request, merchant_id: int, table: str, ident: int
) -> Freshness | None:
    """Make sure the mirror holds who performs service ``ident`` (``table="service"``)
    or what staff member ``ident`` performs (``"staff"``) at the store; its freshness,
    or None when the mirror knows ``ident`` is at another store (an empty list)."""
    known = await request.app[READER].run(book_now.merchant_of, table, ident)
    if known is not False and known != merchant_id:
        return None
    if table == "service":
        scope = fills.performers_scope(merchant_id, ident)
        what = f"Service {ident}"
    else:
        scope = fills.services_of_scope(merchant_id, ident)
        what = f"Staff {ident}"

    async def held() -> bool:
        return await covered_at(request, scope) is not None

    async def fresh() -> bool:
        return young(request, await covered_at(request, scope))

    async def fetch(booxi: BooxiClient) -> None:
        writer = request.app[WRITER]
        if table == "service":
            await fills.fill_performers(booxi, writer, merchant_id, ident)
        else:
            await fills.fill_services_of(booxi, writer, merchant_id, ident)

    filled, failing = await upstream.fill_or_held(request, scope, fresh, held, fetch, what=what)
    return Freshness(await covered_at(request, scope), failing, filled)


def _paging(request: web.Request, query: Query) -> tuple[int, int]:
    offset = query.integer("offset", minimum=0) or 0
    limit = query.integer("limit") or request.app[CONFIG].api.page_size
    if limit > MAX_LIMIT:
        raise bad_request(f"limit may not exceed {MAX_LIMIT}, got {limit}")
    return offset, limit


def _page(
    request: web.Request, rows: list[str], offset: int, limit: int, freshness: Freshness
) -> web.Response:
    fields = {
        "offset": str(offset),
        "limit": str(limit),
        "total": str(len(rows)),
        "items": array(rows[offset : offset + limit]),
    }
    return answer(fields, freshness, request)


async def get_merchant(request: web.Request) -> web.Response:
    query = Query(request.query)
    merchant_id = store_of_request(request, query)
    query.text("language")
    freshness = await store_data(request, merchant_id)
    found = await request.app[READER].run(reads.one, "merchant", merchant_id)
    if found is None:
        raise not_found("Merchant", merchant_id)
    headers = freshness.headers(request.app[CONFIG].api.staleness_s)
    return web.Response(body=found[0].encode(), content_type="application/json", headers=headers)


async def list_staff(request: web.Request) -> web.Response:
    query = Query(request.query)
    merchant_id = store_of_request(request, query)
    service_id = query.integer("serviceId")
    offset, limit = _paging(request, query)
    query.text("language")
    freshness = await store_data(request, merchant_id)
    if service_id is not None:
        performers = await relation(request, merchant_id, "service", service_id)
        if performers is None:
            return _page(request, [], offset, limit, freshness)
        freshness = freshness.merged(performers)
    rows = await request.app[READER].run(book_now.staff, merchant_id, service_id)
    return _page(request, rows, offset, limit, freshness)


async def list_services(request: web.Request) -> web.Response:
    query = Query(request.query)
    merchant_id = store_of_request(request, query)
    staff_id = query.integer("staffId")
    method = query.text("bookingMethod")
    if method is not None and method not in BOOKING_METHODS:
        raise bad_request(f"bookingMethod must be one of {', '.join(BOOKING_METHODS)}")
    keywords = query.text("keywords")
    offset, limit = _paging(request, query)
    query.text("language")
    freshness = await store_data(request, merchant_id)
    if staff_id is not None:
        performed = await relation(request, merchant_id, "staff", staff_id)
        if performed is None:
            return _page(request, [], offset, limit, freshness)
        freshness = freshness.merged(performed)
    rows = await request.app[READER].run(book_now.services, merchant_id, staff_id, method, keywords)
    return _page(request, rows, offset, limit, freshness)


async def list_categories(request: web.Request) -> web.Response:
    query = Query(request.query)
    merchant_id = store_of_request(request, query)
    offset, limit = _paging(request, query)
    query.text("language")
    freshness = await store_data(request, merchant_id)
    rows = await request.app[READER].run(book_now.categories, merchant_id)
    return _page(request, rows, offset, limit, freshness)
