"""Stores, staff, services and categories: single objects and both list styles.

``/merchant/list`` and the "Book Now" lists (``GET /staff``, ``/service``,
``/serviceCategory``) are offset-paged; ``/staff/list``, ``/service/list`` and
``/serviceCategory/list`` are cursor-paged (``{staffs[]}``, ``{services[]}``,
``{serviceCategories[]}``, sorted by id). Choices: single objects are answered bare
(Booxi's own example of ``GET /staff/{id}`` is); the simulated account is one
merchant group, so ``groupId`` other than its own gives an empty list; ``GET
/merchant`` answers the store of ``merchantId`` or, without it, the first store;
staff carry ``merchantId``, the store they work at.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator.errors import bad_request, not_found
from simulator.keys import SETTINGS, WORLD
from simulator.paging import decode_cursor, encode_cursor, keyset_page, offset_page
from simulator.params import Query
from simulator.world import Json, World


def _path_id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 15:
        raise bad_request(f"{name} must be an integer, got {raw!r}")
    return int(raw)


def _one(table: Callable[[World], dict[int, Json]], what: str, name: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        ident = _path_id(request, name)
        found = table(request.app[WORLD]).get(ident)
        if found is None:
            raise not_found(what, ident)
        return web.json_response(found)

    return handler


get_merchant_by_id = _one(lambda w: w.merchants, "Merchant", "merchantId")
get_staff_by_id = _one(lambda w: w.staff, "Staff", "staffId")
get_service_by_id = _one(lambda w: w.services, "Service", "serviceId")
get_category_by_id = _one(lambda w: w.categories, "ServiceCategory", "serviceCategoryId")


async def get_merchant(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    merchant_id = Query(request.query).integer("merchantId")
    if merchant_id is None:
        return web.json_response(next(iter(world.merchants.values())))
    merchant = world.merchants.get(merchant_id)
    if merchant is None:
        raise not_found("Merchant", merchant_id)
    return web.json_response(merchant)


async def list_merchants(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    query = Query(request.query)
    group_id = query.integer("groupId")
    query.text("language")
    merchants = [m for m in world.merchants.values() if group_id in (None, m["groupId"])]
    return web.json_response(offset_page(query, merchants, request.app[SETTINGS].page_size))


# ---- cursor-paged lists --------------------------------------------------------------
INTEGER_FILTERS = ("merchantId", "serviceCategoryId")


def _cursor_list(
    kind: str, key: str, table: Callable[[World], dict[int, Json]], filters: tuple[str, ...]
) -> Handler:
    """A cursor-paged list of one table, filtered on integer and string fields."""

    async def handler(request: web.Request) -> web.Response:
        query = Query(request.query)
        after: list[object] | None = None
        if query.has_cursor():
            saved, after = decode_cursor(kind, query.cursor_only())
        else:
            saved = {
                name: query.integer(name) if name in INTEGER_FILTERS else query.text(name)
                for name in filters
            }
        if bool(saved.get("externalId")) != bool(saved.get("moduleId")):
            raise bad_request("moduleId and externalId go together")
        world = request.app[WORLD]
        rows = sorted(table(world).values(), key=lambda row: row["id"])
        rows = [row for row in rows if _matches(row, saved)]
        page, last = keyset_page(
            rows, lambda row: [row["id"]], after, request.app[SETTINGS].page_size
        )
        cursor = encode_cursor(kind, saved, last) if last is not None else None
        return web.json_response({key: page, "cursor": cursor})

    return handler


def _matches(row: Json, saved: dict[str, object]) -> bool:
    if saved.get("externalId"):
        return False  # the simulator keeps module links for clients only
    checks = {
        "merchantId": row.get("merchantId"),
        "serviceCategoryId": row.get("categoryId"),
        "status": row.get("status"),
        "bookingMethod": row.get("bookingMethod"),
        "personnelType": row.get("personnelType"),
    }
    return all(saved.get(name) in (None, value) for name, value in checks.items())


list_staff = _cursor_list(
    "staff",
    "staffs",
    lambda w: w.staff,
    ("merchantId", "moduleId", "externalId", "status", "personnelType"),
)
list_services = _cursor_list(
    "service",
    "services",
    lambda w: w.services,
    ("merchantId", "moduleId", "externalId", "serviceCategoryId", "bookingMethod", "status"),
)
list_categories = _cursor_list(
    "serviceCategory",
    "serviceCategories",
    lambda w: w.categories,
    ("merchantId", "moduleId", "externalId"),
)


# ---- Book Now lists (offset-paged) ---------------------------------------------------
async def book_now_staff(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    query = Query(request.query)
    merchant_id = _book_now_merchant(world, query)
    service_id = query.integer("serviceId")
    if service_id is not None and service_id not in world.services:
        raise not_found("Service", service_id)
    rows = [s for s in world.staff.values() if s["merchantId"] == merchant_id]
    return web.json_response(offset_page(query, rows, request.app[SETTINGS].page_size))


async def book_now_services(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    query = Query(request.query)
    merchant_id = _book_now_merchant(world, query)
    method = query.text("bookingMethod")
    keywords = (query.text("keywords") or "").lower()
    rows = [
        s
        for s in world.services.values()
        if s["merchantId"] == merchant_id
        and method in (None, s["bookingMethod"])
        and keywords in s["name"].lower()
    ]
    return web.json_response(offset_page(query, rows, request.app[SETTINGS].page_size))


async def book_now_categories(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    query = Query(request.query)
    merchant_id = _book_now_merchant(world, query)
    rows = [c for c in world.categories.values() if c["merchantId"] == merchant_id]
    return web.json_response(offset_page(query, rows, request.app[SETTINGS].page_size))


def _book_now_merchant(world: World, query: Query) -> int:
    merchant_id = query.integer("merchantId")
    if merchant_id is None:
        return next(iter(world.merchants))
    if merchant_id not in world.merchants:
        raise not_found("Merchant", merchant_id)
    return merchant_id
