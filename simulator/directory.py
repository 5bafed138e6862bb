"""Stores, staff, services and categories: single objects and both list styles.

``/merchant/list`` and the "Book Now" lists (``GET /staff``, ``/service``,
``/serviceCategory``) are offset-paged; ``/staff/list``, ``/service/list`` and
``/serviceCategory/list`` are cursor-paged (``{staffs[]}``, ``{services[]}``,
``{serviceCategories[]}``, sorted by id). Choices: single objects are answered bare
(Booxi's own example of ``GET /staff/{id}`` is); the simulated account is one
merchant group, so ``groupId`` other than its own gives an empty list; ``GET
/merchant`` answers the store of ``merchantId`` or, without it, the first store;
staff carry ``merchantId``, the store they work at.

``moduleId``+``externalId`` on ``/staff/list`` and ``/service/list`` find the objects
linked to that external id (``hr`` for staff, ``pos`` for services); categories have
no links, so there it is always an empty list.

Book Now lists (public key), sorted by id, for the store of ``merchantId`` or, without
it, the first store: ``GET /staff`` the store's ``Online`` staff, with ``serviceId``
only those who perform it (``World.service_staff``; an unknown service is a 404, one of
another store gives an empty list); ``GET /service`` the store's ``Online`` services,
with ``staffId`` only those the staff member performs (unknown staff 404),
``bookingMethod`` (exact) and ``keywords`` (case-insensitive, in the name);
``GET /serviceCategory`` the store's categories.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator.answers import answer
from simulator.errors import bad_request, not_found
from simulator.keys import DIALECTS, SETTINGS, WORLD
from simulator.links import linked_ids
from simulator.paging import decode_cursor, encode_cursor, keyset_page, offset_page
from simulator.params import Query, path_id
from simulator.world import Json, World


def _path_id(request: web.Request, name: str) -> int:
    return path_id(name, request.match_info[name])


def _one(table: Callable[[World], dict[int, Json]], what: str, name: str, kind: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        ident = _path_id(request, name)
        found = table(request.app[WORLD]).get(ident)
        if found is None:
            raise not_found(what, ident)
        return answer(request, found, bare=kind)

    return handler


get_merchant_by_id = _one(lambda w: w.merchants, "Merchant", "merchantId", "merchant")
get_staff_by_id = _one(lambda w: w.staff, "Staff", "staffId", "staff")
get_service_by_id = _one(lambda w: w.services, "Service", "serviceId", "service")
get_category_by_id = _one(
    lambda w: w.categories, "ServiceCategory", "serviceCategoryId", "serviceCategory"
)


def _default_limit(request: web.Request) -> int:
    return request.app[DIALECTS].offset_limit(request.app[SETTINGS].page_size)


async def get_merchant(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    merchant_id = Query(request.query).integer("merchantId")
    if merchant_id is None:
        return answer(request, next(iter(world.merchants.values())), bare="merchant")
    merchant = world.merchants.get(merchant_id)
    if merchant is None:
        raise not_found("Merchant", merchant_id)
    return answer(request, merchant, bare="merchant")


async def list_merchants(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    query = Query(request.query)
    group_id = query.integer("groupId")
    query.text("language")
    merchants = [m for m in world.merchants.values() if group_id in (None, m["groupId"])]
    return answer(request, offset_page(query, merchants, _default_limit(request)), items="merchant")


# ---- cursor-paged lists --------------------------------------------------------------
INTEGER_FILTERS = ("merchantId", "serviceCategoryId")


def _cursor_list(
    kind: str,
    key: str,
    table: Callable[[World], dict[int, Json]],
    filters: tuple[str, ...],
    links: Callable[[World], dict[tuple[int, str], Json]] | None = None,
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
        if saved.get("externalId"):
            found = linked_ids(
                links(world) if links else {}, str(saved["moduleId"]), str(saved["externalId"])
            )
            rows = [row for row in rows if row["id"] in found]
        size = request.app[DIALECTS].page_size(request.app[SETTINGS].page_size)
        page, last = keyset_page(rows, lambda row: [row["id"]], after, size)
        cursor = encode_cursor(kind, saved, last) if last is not None else None
        return answer(request, {key: page, "cursor": cursor})

    return handler


def _matches(row: Json, saved: dict[str, object]) -> bool:
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
    lambda w: w.staff_links,
)
list_services = _cursor_list(
    "service",
    "services",
    lambda w: w.services,
    ("merchantId", "moduleId", "externalId", "serviceCategoryId", "bookingMethod", "status"),
    lambda w: w.service_links,
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
    performers: list[int] | None = None
    if service_id is not None:
        if service_id not in world.services:
            raise not_found("Service", service_id)
        performers = world.service_staff.get(service_id, [])
    query.text("language")
    rows = [
        s
        for s in _by_id(world.staff)
        if s["merchantId"] == merchant_id
        and s["status"] == "Online"
        and (performers is None or s["id"] in performers)
    ]
    return answer(request, offset_page(query, rows, _default_limit(request)), items="staff")


async def book_now_customizations(request: web.Request) -> web.Response:
    """``GET /serviceCustomization``: what each staff member performing a service charges
    and takes for it. **choice** (the shape is not public): an offset list of
    ``{serviceId, staffId, duration, price}``, one per performer (``staffId`` narrows it),
    the service's own duration and price (the simulator has no per-staff overrides).
    ``serviceId`` is required; an unknown service or staff member is a 404."""
    world = request.app[WORLD]
    query = Query(request.query)
    service_id = query.required_integer("serviceId")
    staff_id = query.integer("staffId")
    query.text("language")
    service = world.services.get(service_id)
    if service is None:
        raise not_found("Service", service_id)
    if staff_id is not None and staff_id not in world.staff:
        raise not_found("Staff", staff_id)
    rows = [
        {
            "serviceId": service_id,
            "staffId": performer,
            "duration": service.get("duration"),
            "price": service.get("price"),
        }
        for performer in sorted(world.service_staff.get(service_id, []))
        if staff_id in (None, performer)
    ]
    return answer(request, offset_page(query, rows, _default_limit(request)))


async def book_now_services(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    query = Query(request.query)
    merchant_id = _book_now_merchant(world, query)
    staff_id = query.integer("staffId")
    if staff_id is not None and staff_id not in world.staff:
        raise not_found("Staff", staff_id)
    method = query.text("bookingMethod")
    keywords = (query.text("keywords") or "").lower()
    query.text("language")
    rows = [
        s
        for s in _by_id(world.services)
        if s["merchantId"] == merchant_id
        and s["status"] == "Online"
        and method in (None, s["bookingMethod"])
        and keywords in s["name"].lower()
        and (staff_id is None or staff_id in world.service_staff.get(s["id"], []))
    ]
    return answer(request, offset_page(query, rows, _default_limit(request)), items="service")


async def book_now_categories(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    query = Query(request.query)
    merchant_id = _book_now_merchant(world, query)
    query.text("language")
    rows = [c for c in _by_id(world.categories) if c["merchantId"] == merchant_id]
    return answer(request, offset_page(query, rows, _default_limit(request)))


def _by_id(table: dict[int, Json]) -> list[Json]:
    return [table[ident] for ident in sorted(table)]


def _book_now_merchant(world: World, query: Query) -> int:
    merchant_id = query.integer("merchantId")
    if merchant_id is None:
        return next(iter(world.merchants))
    if merchant_id not in world.merchants:
        raise not_found("Merchant", merchant_id)
    return merchant_id
