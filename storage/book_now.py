"""Book Now lists and who performs what: writes (SQLAlchemy ``Connection``, run by the
writer) and reads (a ``ReadConnection``, run by the reader).

The lists are read from the reference tables the poller (or a store fill) keeps: a
store's ``Online`` staff, its ``Online`` services, its categories, by id. ``serviceId``
and ``staffId`` filters read ``service_staff`` (see ``storage.models.ServiceStaff``):
rows from the list that was asked (``listed_by``), for the store it was asked for.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from storage.dialect import insert_ignoring_conflicts
from storage.models import ServiceStaff, table_of
from storage.read_connection import ReadConnection
from storage.reference import SERVICE, STAFF
from storage.rows import Json

SERVICE_STAFF = table_of(ServiceStaff)
LISTED_BY = ("service", "staff")
Raw = str


# ---- writes -----------------------------------------------------------------------------
def replace_relation(
    conn: Connection,
    listed_by: str,
    merchant_id: int,
    subject_id: int,
    listed_ids: Iterable[int],
    now: dt.datetime,
) -> None:
    """What one list said, replacing what it said before: ``listed_by="service"``: the
    staff ``listed_ids`` perform service ``subject_id``; ``"staff"``: staff member
    ``subject_id`` performs the services ``listed_ids``."""
    if listed_by not in LISTED_BY:
        raise ValueError(listed_by)
    table = SERVICE_STAFF
    subject = table.c.service_id if listed_by == "service" else table.c.staff_id
    conn.execute(
        delete(table).where(
            table.c.listed_by == listed_by,
            table.c.merchant_id == merchant_id,
            subject == subject_id,
        )
    )
    rows = [
        {
            "listed_by": listed_by,
            "merchant_id": merchant_id,
            "service_id": subject_id if listed_by == "service" else other,
            "staff_id": other if listed_by == "service" else subject_id,
            "synced_at": now,
        }
        for other in dict.fromkeys(listed_ids)
    ]
    insert_ignoring_conflicts(conn, table, rows)


def insert_absent_staff(conn: Connection, rows: Sequence[Json]) -> None:
    """Staff rows the mirror does not hold yet; held ones are left as they are (a Book
    Now object may carry fewer fields than the partner list the poller reads)."""
    insert_ignoring_conflicts(conn, STAFF, list(rows))


def insert_absent_services(conn: Connection, rows: Sequence[Json]) -> None:
    insert_ignoring_conflicts(conn, SERVICE, list(rows))


# ---- reads ------------------------------------------------------------------------------
def merchant_of(conn: ReadConnection, table: str, ident: int) -> int | None | bool:
    """The store of a staff member or service; False when the mirror does not hold it."""
    if table not in ("staff", "service"):
        raise ValueError(table)
    row = conn.execute(f"SELECT merchant_id FROM {table} WHERE id = ?", (ident,)).fetchone()
    return False if row is None else row[0]


def staff(conn: ReadConnection, merchant_id: int, service_id: int | None) -> list[Raw]:
    """The store's ``Online`` staff by id; with ``service_id``, those who perform it."""
    sql = "SELECT raw FROM staff WHERE merchant_id = ? AND status = 'Online'"
    params: list[object] = [merchant_id]
    if service_id is not None:
        sql += (
            " AND id IN (SELECT staff_id FROM service_staff WHERE listed_by = 'service'"
            " AND merchant_id = ? AND service_id = ?)"
        )
        params += [merchant_id, service_id]
    return [r[0] for r in conn.execute(sql + " ORDER BY id", params)]


def services(
    conn: ReadConnection,
    merchant_id: int,
    staff_id: int | None,
    booking_method: str | None,
    keywords: str | None,
) -> list[Raw]:
    """The store's ``Online`` services by id, filtered as Booxi's ``GET /service``:
    ``staff_id`` (performed by), ``booking_method`` (exact), ``keywords``
    (case-insensitive, in the name)."""
    sql = "SELECT raw FROM service WHERE merchant_id = ?"
    params: list[object] = [merchant_id]
    if booking_method is not None:
        sql += " AND booking_method = ?"
        params.append(booking_method)
    if staff_id is not None:
        sql += (
            " AND id IN (SELECT service_id FROM service_staff WHERE listed_by = 'staff'"
            " AND merchant_id = ? AND staff_id = ?)"
        )
        params += [merchant_id, staff_id]
    words = (keywords or "").lower()
    found = []
    for (raw,) in conn.execute(sql + " ORDER BY id", params):
        service = json.loads(raw)
        name = service.get("name")
        if service.get("status") != "Online":
            continue
        if words and not (isinstance(name, str) and words in name.lower()):
            continue
        found.append(raw)
    return found


def categories(conn: ReadConnection, merchant_id: int) -> list[Raw]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT raw FROM service_category WHERE merchant_id = ? ORDER BY id", (merchant_id,)
        )
    ]
