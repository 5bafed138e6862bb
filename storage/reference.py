"""Stores, staff, services, categories, clients and module links."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from storage import pii
from storage.dialect import upsert
from storage.models import (
    CLIENT_PII_COLUMNS,
    Client,
    Merchant,
    ModuleLink,
    Service,
    ServiceCategory,
    Staff,
    table_of,
)
from storage.rows import Json

MERCHANT = table_of(Merchant)
STAFF = table_of(Staff)
SERVICE = table_of(Service)
CATEGORY = table_of(ServiceCategory)
CLIENT = table_of(Client)
LINK = table_of(ModuleLink)


def upsert_merchants(conn: Connection, rows: Sequence[Json]) -> None:
    upsert(conn, MERCHANT, rows, ["id"])


def upsert_staff(conn: Connection, rows: Sequence[Json]) -> None:
    upsert(conn, STAFF, rows, ["id"])


def upsert_services(conn: Connection, rows: Sequence[Json]) -> None:
    upsert(conn, SERVICE, rows, ["id"])


def upsert_service_categories(conn: Connection, rows: Sequence[Json]) -> None:
    upsert(conn, CATEGORY, rows, ["id"])


def remove_staff_not_listed(conn: Connection, merchant_id: int, listed: set[int]) -> list[int]:
    """Staff of a store that Booxi no longer lists: removed; their ids."""
    result = conn.execute(select(STAFF.c.id).where(STAFF.c.merchant_id == merchant_id))
    gone = sorted(set(result.scalars()) - listed)
    if gone:
        conn.execute(delete(STAFF).where(STAFF.c.id.in_(gone)))
    return gone


def _client_not_older(excluded: Any) -> Any:
    return (
        (CLIENT.c.modified_on.is_(None))
        | (excluded.modified_on.is_(None))
        | (CLIENT.c.modified_on <= excluded.modified_on)
    )


def _link_not_older(excluded: Any) -> Any:
    return (
        (LINK.c.modified_on.is_(None))
        | (excluded.modified_on.is_(None))
        | (LINK.c.modified_on <= excluded.modified_on)
    )


def upsert_clients(conn: Connection, rows: Sequence[Json]) -> set[int]:
    """Store clients unless the mirror holds a strictly newer version; the ids written.
    Clients whose personal data the mirror must not keep are stored stripped."""
    strip_blocked_clients(conn, rows)
    written = upsert(
        conn,
        CLIENT,
        rows,
        ["id"],
        only_if=_client_not_older,
        returning="id",
    )
    return set(written)


def delete_client(conn: Connection, client_id: int) -> None:
    conn.execute(delete(LINK).where(LINK.c.entity == "client", LINK.c.entity_id == client_id))
    conn.execute(delete(CLIENT).where(CLIENT.c.id == client_id))


def upsert_links(conn: Connection, rows: Sequence[Json]) -> None:
    """Store module links unless the mirror holds a strictly newer version."""
    unique = {(r["entity"], r["entity_id"], r["module_id"]): r for r in rows}
    upsert(
        conn,
        LINK,
        list(unique.values()),
        ["entity", "entity_id", "module_id"],
        only_if=_link_not_older,
    )


def replace_external_links(
    conn: Connection, entity: str, module_id: str, external_id: str, rows: Sequence[Json]
) -> None:
    """Booxi's current answer for who is linked to ``external_id`` in ``module_id``: the
    ``entity`` links to it that Booxi no longer gave are removed, ``rows`` stored."""
    keep = {row["entity_id"] for row in rows}
    conn.execute(
        delete(LINK).where(
            LINK.c.entity == entity,
            LINK.c.module_id == module_id,
            LINK.c.external_id == external_id,
            LINK.c.entity_id.not_in(keep),
        )
    )
    upsert_links(conn, rows)


def staff_ids(conn: Connection, merchant_ids: Sequence[int] = ()) -> list[tuple[int, int | None]]:
    """(staff id, merchant id) of every mirrored staff member, optionally of some stores."""
    query = select(STAFF.c.id, STAFF.c.merchant_id).order_by(STAFF.c.merchant_id, STAFF.c.id)
    if merchant_ids:
        query = query.where(STAFF.c.merchant_id.in_(list(merchant_ids)))
    result = conn.execute(query)
    return [(row.id, row.merchant_id) for row in result]


def strip_blocked_clients(conn: Connection, rows: Sequence[Json]) -> None:
    gone = pii.blocked(conn, "client", (r["id"] for r in rows))
    for row in rows:
        if str(row["id"]) in gone:
            strip_client_row(row)


def strip_client_row(row: Json) -> None:
    """A client row (columns and raw JSON) without personal data, in place."""
    client = json.loads(row["raw"])
    pii.strip_person(client)
    row["raw"] = pii.dump(client)
    for column in CLIENT_PII_COLUMNS:
        row[column] = ""
