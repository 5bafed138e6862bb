"""Stores, staff, services and categories, from the reference data the poller keeps.

``/merchant/list`` is offset-paged (``{offset, limit, total, items}``); the staff,
service and category lists are cursor-paged by id (``staffs``, ``services``,
``serviceCategories``). A store-bound key sees its stores only. If the mirror has no
reference data yet (before its first poll), it fetches it from Booxi first.

``moduleId`` + ``externalId`` on ``/staff/list`` and ``/service/list`` (an employee
number, a point-of-sale SKU) are answered from the mirror's module links; when the
mirror has not asked Booxi about that pair within ``[sync] reference_interval_s`` it
asks first (``mirror.book_now.fill_linked``), and when Booxi cannot be reached then it
answers what it holds, marked stale. The other filters and the key's stores apply as
well (what Booxi returns is stored whatever its store, and served by the key). On
``/serviceCategory/list`` the pair always gives an empty list (category links are not
mirrored; the simulator has none).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from api import upstream
from api.auth import principal
from api.book_now import covered_at, young
from api.booxi_shape import bad_request, not_found
from api.freshness import Freshness
from api.keys import CONFIG, READER, WRITER
from api.query import Query, encode_cursor, path_id
from api.reading import answer, array, cursor_text
from mirror import book_now as fills
from mirror.client import BooxiClient
from mirror.fill import fill_staff
from mirror.poller import REFERENCE_SCOPE, refresh_reference_data
from storage import reads

MAX_LIMIT = 100


async def _reference(request: web.Request) -> Freshness:
    """The reference data's freshness, fetching it first if the mirror has none."""
    reader = request.app[READER]

    async def held() -> bool:
        return bool(await reader.run(reads.has_rows, "merchant"))

    async def fetch(booxi: BooxiClient) -> None:
        stores = list(request.app[CONFIG].sync.merchant_ids)
        await refresh_reference_data(booxi, request.app[WRITER], stores)

    filled = await upstream.fill(request, REFERENCE_SCOPE, held, fetch, what="the store data")
    state = await reader.run(reads.scope_sync, REFERENCE_SCOPE)
    freshness = Freshness.of_sync_rows([state] if state else [])
    return freshness.as_filled() if filled else freshness


async def list_merchants(request: web.Request) -> web.Response:
    query = Query(request.query)
    group_id = query.integer("groupId")
    offset = query.integer("offset", minimum=0) or 0
    limit = query.integer("limit") or request.app[CONFIG].api.page_size
    query.text("language")
    if limit > MAX_LIMIT:
        raise bad_request(f"limit may not exceed {MAX_LIMIT}, got {limit}")
    freshness = await _reference(request)
    rows = await request.app[READER].run(reads.merchants, group_id, principal(request).merchant_ids)
    items = [raw for _, raw in rows[offset : offset + limit]]
    return answer(
        {
            "offset": str(offset),
            "limit": str(limit),
            "total": str(len(rows)),
            "items": array(items),
        },
        freshness,
        request,
    )


async def get_merchant(request: web.Request) -> web.Response:
    return await _one(request, "merchant", "merchantId", "Merchant")


async def get_staff(request: web.Request) -> web.Response:
    """``GET /staff/{id}``: a staff member the mirror does not hold is asked of Booxi
    (stored only when they work at one of the key's stores)."""
    staff_id = path_id(request, "staffId")
    if await request.app[READER].run(reads.one, "staff", staff_id) is None:
        caller = principal(request)

        async def held() -> bool:
            return await request.app[READER].run(reads.one, "staff", staff_id) is not None

        async def fetch(booxi: BooxiClient) -> None:
            await fill_staff(booxi, request.app[WRITER], staff_id, keep=caller.sees)

        what = f"Staff {staff_id}"
        await upstream.fill(request, f"staff-info:{staff_id}", held, fetch, what=what)
    return await _one(request, "staff", "staffId", "Staff")


async def get_service(request: web.Request) -> web.Response:
    return await _one(request, "service", "serviceId", "Service")


async def get_category(request: web.Request) -> web.Response:
    return await _one(request, "service_category", "serviceCategoryId", "ServiceCategory")


async def _one(request: web.Request, table: str, name: str, what: str) -> web.Response:
    """One object, bare, as Booxi answers it, from the mirror's reference data."""
    raw_id = path_id(request, name)
    freshness = await _reference(request)
    found = await request.app[READER].run(reads.one, table, raw_id)
    if found is None or not principal(request).sees(found[1]):
        raise not_found(what, raw_id)
    headers = freshness.headers(request.app[CONFIG].api.staleness_s)
    return web.Response(body=found[0].encode(), content_type="application/json", headers=headers)


LINKED = {"staff": "staff", "service": "service"}  # list kind -> module_link entity


async def _lookup(request: web.Request, entity: str, module_id: str, external_id: str) -> Freshness:
    """Make sure the mirror holds Booxi's answer for who is linked to ``external_id``
    (asked again once older than ``[sync] reference_interval_s``); its freshness."""
    scope = fills.link_scope(entity, module_id, external_id)

    async def held() -> bool:
        return await covered_at(request, scope) is not None

    async def fresh() -> bool:
        return young(request, await covered_at(request, scope))

    async def fetch(booxi: BooxiClient) -> None:
        await fills.fill_linked(booxi, request.app[WRITER], entity, module_id, external_id)

    what = f"the {entity} linked to that external id"
    filled, failing = await upstream.fill_or_held(request, scope, fresh, held, fetch, what=what)
    return Freshness(await covered_at(request, scope), failing, filled)


def _list(kind: str, key: str, filters: tuple[str, ...], integers: tuple[str, ...]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        query = Query(request.query)
        after: int | None = None
        if query.has_cursor():
            saved, position = query.cursor(request, kind)
            try:
                after = int(position[0])
            except (TypeError, ValueError, IndexError):
                raise bad_request("cursor is not valid for this endpoint") from None
        else:
            saved = {
                name: query.integer(name) if name in integers else query.text(name)
                for name in filters
            }
        if bool(saved.get("moduleId")) != bool(saved.get("externalId")):
            raise bad_request("moduleId and externalId go together")
        freshness = await _reference(request)
        size = request.app[CONFIG].api.page_size
        linked = None
        if saved.get("externalId") and kind in LINKED:
            linked = (LINKED[kind], str(saved["moduleId"]), str(saved["externalId"]))
            if after is None:  # a follow-up page reads what the first page's lookup stored
                freshness = freshness.merged(await _lookup(request, *linked))
        if saved.get("externalId") and linked is None:
            items: list[str] = []  # categories: Booxi's links are not mirrored
            last = None
        else:
            items, last = await request.app[READER].run(
                reads.listing, kind, saved, principal(request).merchant_ids, after, size, linked
            )
        cursor = encode_cursor(request, kind, saved, [last]) if last is not None else None
        return answer({key: array(items), "cursor": cursor_text(cursor)}, freshness, request)

    return handler


list_staff = _list(
    "staff",
    "staffs",
    ("merchantId", "moduleId", "externalId", "status", "personnelType"),
    ("merchantId",),
)
list_services = _list(
    "service",
    "services",
    ("merchantId", "moduleId", "externalId", "serviceCategoryId", "bookingMethod", "status"),
    ("merchantId", "serviceCategoryId"),
)
list_categories = _list(
    "serviceCategory",
    "serviceCategories",
    ("merchantId", "moduleId", "externalId"),
    ("merchantId",),
)
