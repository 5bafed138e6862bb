"""First-demand fills behind the Book Now lists and the staff/service module-link
lookups: fetch from Booxi, store, record coverage; the API then answers from storage.

Each raises ``BooxiError`` when Booxi cannot answer (``api.upstream.fill`` maps it).
Coverage scopes (``storage.coverage``, covering ``WHOLE``, ``covered_at`` = when):

- ``store:<merchant>``: a store's reference data (the store, its staff, services and
  categories) fetched for a store the poller does not refresh. **choice**: through
  the partner lists the poller reads (``/merchant/{id}``, ``/staff/list``,
  ``/service/list``, ``/serviceCategory/list``), so the rows are the same whichever
  way they came, and the Book Now filters (online only, ...) apply when reading;
- ``performers:<merchant>:<service>`` and ``services-of:<merchant>:<staff>``: what
  Booxi's Book Now ``GET /staff?serviceId=`` and ``GET /service?staffId=`` (every
  page) answered for that store, kept in ``service_staff``;
- ``link:<staff|service>:<digest>``: who Booxi links to a (``moduleId``,
  ``externalId``) (``GET /staff/list`` or ``/service/list`` with both, every page), as
  a digest so that no external id is kept in clear in a scope name. The objects found
  are stored, and each one's link is read with ``GET /{kind}/{id}/moduleLink/{module}``
  so that the stored link is Booxi's own (an object whose link is gone by then is left
  out); links to that external id Booxi no longer gives are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging

from sqlalchemy.engine import Connection

from mirror.booxi_errors import BooxiNotFound
from mirror.budget import Priority
from mirror.client import BooxiClient
from storage import book_now, coverage, reference
from storage.rows import (
    Json,
    entity_link_row,
    merchant_row,
    service_category_row,
    service_row,
    staff_row,
)
from storage.times import utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)

LINKED_KINDS = ("staff", "service")


def store_scope(merchant_id: int) -> str:
    return f"store:{merchant_id}"


def performers_scope(merchant_id: int, service_id: int) -> str:
    return f"performers:{merchant_id}:{service_id}"


def services_of_scope(merchant_id: int, staff_id: int) -> str:
    return f"services-of:{merchant_id}:{staff_id}"


def link_scope(kind: str, module_id: str, external_id: str) -> str:
    digest = hashlib.sha256(json.dumps([module_id, external_id]).encode()).hexdigest()[:32]
    return f"link:{kind}:{digest}"


async def fill_store(client: BooxiClient, writer: Writer, merchant_id: int) -> None:
    """One store's reference data, as the poller fetches it, stored."""
    merchant = await client.get_merchant(merchant_id, priority=Priority.FILL)
    staff = [s async for s in client.iter_staff(merchant_id=merchant_id, priority=Priority.FILL)]
    services = [
        s async for s in client.iter_services(merchant_id=merchant_id, priority=Priority.FILL)
    ]
    categories = [
        c
        async for c in client.iter_service_categories(
            merchant_id=merchant_id, priority=Priority.FILL
        )
    ]

    def save(conn: Connection) -> None:
        now = utcnow()
        reference.upsert_merchants(conn, [merchant_row(merchant, "fill", now)])
        reference.upsert_staff(conn, [staff_row(s, "fill", now) for s in staff])
        reference.upsert_services(conn, [service_row(s, "fill", now) for s in services])
        reference.upsert_service_categories(
            conn, [service_category_row(c, "fill", now) for c in categories]
        )
        reference.remove_staff_not_listed(conn, merchant_id, {s["id"] for s in staff})
        coverage.record_fill(conn, store_scope(merchant_id), *coverage.WHOLE, now)

    await writer.run(save)
    log.info("fill.store", extra={"merchant_id": merchant_id, "staff": len(staff)})


async def fill_performers(
    client: BooxiClient, writer: Writer, merchant_id: int, service_id: int
) -> None:
    """Who performs ``service_id`` at the store, as Booxi's ``GET /staff`` lists them."""
    found = [s async for s in client.iter_book_now_staff(merchant_id, service_id=service_id)]

    def save(conn: Connection) -> None:
        now = utcnow()
        rows = [staff_row(s, "fill", now) for s in found]
        book_now.insert_absent_staff(conn, rows)
        ids = [row["id"] for row in rows]
        book_now.replace_relation(conn, "service", merchant_id, service_id, ids, now)
        scope = performers_scope(merchant_id, service_id)
        coverage.record_fill(conn, scope, *coverage.WHOLE, now)

    await writer.run(save)


async def fill_services_of(
    client: BooxiClient, writer: Writer, merchant_id: int, staff_id: int
) -> None:
    """The services ``staff_id`` performs at the store, as Booxi's ``GET /service``
    lists them."""
    found = [s async for s in client.iter_book_now_services(merchant_id, staff_id=staff_id)]

    def save(conn: Connection) -> None:
        now = utcnow()
        rows = [service_row(s, "fill", now) for s in found]
        book_now.insert_absent_services(conn, rows)
        ids = [row["id"] for row in rows]
        book_now.replace_relation(conn, "staff", merchant_id, staff_id, ids, now)
        coverage.record_fill(conn, services_of_scope(merchant_id, staff_id), *coverage.WHOLE, now)

    await writer.run(save)


async def fill_linked(
    client: BooxiClient, writer: Writer, kind: str, module_id: str, external_id: str
) -> None:
    """The staff members or services Booxi links to ``external_id`` in ``module_id``,
    with their links, stored; the lookup recorded as answered."""
    if kind not in LINKED_KINDS:
        raise ValueError(kind)
    search = client.iter_staff if kind == "staff" else client.iter_services
    found = [
        obj
        async for obj in search(
            module_id=module_id, external_id=external_id, priority=Priority.FILL
        )
    ]
    links: list[Json] = []
    for obj in found:
        link = await _link(client, kind, obj.get("id"), module_id)
        if link is not None and link.get("externalId") == external_id:
            links.append(link)
    to_row = staff_row if kind == "staff" else service_row

    def save(conn: Connection) -> None:
        now = utcnow()
        rows = [to_row(obj, "fill", now) for obj in found]
        (reference.upsert_staff if kind == "staff" else reference.upsert_services)(conn, rows)
        link_rows = [entity_link_row(link, kind, "fill", now) for link in links]
        reference.replace_external_links(conn, kind, module_id, external_id, link_rows)
        scope = link_scope(kind, module_id, external_id)
        coverage.record_fill(conn, scope, *coverage.WHOLE, now)

    await writer.run(save)
    log.info("fill.linked", extra={"kind": kind, "found": len(found), "links": len(links)})


async def _link(client: BooxiClient, kind: str, ident: object, module_id: str) -> Json | None:
    """The object's link in ``module_id``, from a wrapped (``{link, staff}``) or bare
    answer; None when Booxi has none (any more)."""
    if isinstance(ident, bool) or not isinstance(ident, int):
        return None  # the row check reports the object itself
    get = client.get_staff_module_link if kind == "staff" else client.get_service_module_link
    try:
        answer = await get(ident, module_id, priority=Priority.FILL)
    except BooxiNotFound:
        return None
    wrapped = answer.get("link")
    link = wrapped if isinstance(wrapped, dict) else answer
    return link if isinstance(link.get("moduleId"), str) else None
