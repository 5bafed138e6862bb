"""What the read API serves, straight from the database: stored JSON texts, never
re-encoded.

Functions of a ``ReadConnection`` (run by ``storage.reader.Reader``, in SQL both
engines run), each answering one request in a few indexed queries. They return raw JSON texts in the
order Booxi gives them; ``api`` splices them into the answer.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

from storage.read_connection import ReadConnection

Raw = str


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def _by_id(conn: ReadConnection, sql: str, ids: Sequence[Any]) -> dict[Any, Raw]:
    """``{id: raw}`` for ``sql`` (selecting id, raw) with an ``IN ({marks})`` placeholder."""
    found: dict[Any, Raw] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        for ident, raw in conn.execute(sql.format(marks=_marks(chunk)), chunk):
            found[ident] = raw
    return found


def _services_of(
    conn: ReadConnection, bookings: Iterable[Raw], group_events: Iterable[Raw]
) -> list[Raw]:
    ids: dict[int, None] = {}
    for raw in bookings:
        for item in json.loads(raw).get("items") or []:
            if isinstance(item, dict) and isinstance(item.get("serviceId"), int):
                ids[item["serviceId"]] = None
    for raw in group_events:
        service_id = json.loads(raw).get("serviceId")
        if isinstance(service_id, int):
            ids[service_id] = None
    found = _by_id(conn, "SELECT id, raw FROM service WHERE id IN ({marks})", list(ids))
    return [found[i] for i in ids if i in found]


# ---- calendar ---------------------------------------------------------------------------
@dataclasses.dataclass
class CalendarPage:
    events: list[Raw]
    bookings: list[Raw]
    group_events: list[Raw]
    services: list[Raw]
    staff: Raw | None
    time_slots: list[Raw]
    last: tuple[str, int] | None  # sort key of the last event, when more follow
    provisional: bool = False  # some events carry ids derived by the mirror, not Booxi's
    booking_ids: list[str] = dataclasses.field(default_factory=list)
    group_ids: list[int] = dataclasses.field(default_factory=list)


def staff_merchant(conn: ReadConnection, staff_id: int) -> int | None | bool:
    """The staff member's store; False when the mirror does not know them."""
    row = conn.execute("SELECT merchant_id FROM staff WHERE id = ?", (staff_id,)).fetchone()
    return False if row is None else row[0]


def calendar_page(
    conn: ReadConnection,
    staff_id: int,
    start: str,
    end: str,
    types: Sequence[str],
    includes: Sequence[str],
    after: tuple[str, int] | None,
    size: int,
) -> CalendarPage:
    sql = (
        f"SELECT id, starts_on, type, booking_id, group_event_id, time_slot_id, raw "
        f"FROM calendar_event WHERE staff_id = ? AND starts_on <= ? AND ends_on >= ? "
        f"AND type IN ({_marks(types)})"
    )
    params: list[Any] = [staff_id, end, start, *types]
    if after is not None:
        sql += " AND (starts_on > ? OR (starts_on = ? AND id > ?))"
        params += [after[0], after[0], after[1]]
    rows = conn.execute(sql + " ORDER BY starts_on, id LIMIT ?", [*params, size + 1]).fetchall()
    more = len(rows) > size
    rows = rows[:size]
    page = CalendarPage(
        [r[6] for r in rows],
        [],
        [],
        [],
        None,
        [],
        (rows[-1][1], rows[-1][0]) if more and rows else None,
        any(r[0] < 0 for r in rows),
    )
    appointment_ids = [r[3] for r in rows if r[2] == "Appointment" and r[3]]
    group_ids = [r[4] for r in rows if r[2] == "GroupEvent" and r[4] is not None]
    slot_ids = [r[5] for r in rows if r[2] == "TimeSlot" and r[5] is not None]
    bookings = (
        _by_id(
            conn,
            "SELECT booking_id, raw FROM booking WHERE booking_id IN ({marks})",
            appointment_ids,
        )
        if "Appointment" in includes
        else {}
    )
    groups: dict[int, Raw] = {}
    reservations: dict[int, list[tuple[str, Raw]]] = {}
    if "GroupEvent" in includes and group_ids:
        groups = _by_id(conn, "SELECT id, raw FROM group_event WHERE id IN ({marks})", group_ids)
        unique = list(dict.fromkeys(group_ids))
        for booking_id, group_id, raw in conn.execute(
            f"SELECT booking_id, group_event_id, raw FROM booking WHERE group_event_id IN "
            f"({_marks(unique)}) AND status != 'Cancelled' ORDER BY booking_id",
            unique,
        ):
            reservations.setdefault(group_id, []).append((booking_id, raw))
    seen_bookings: dict[str, Raw] = {}
    seen_groups: dict[int, Raw] = {}
    for row in rows:
        if row[2] == "Appointment" and row[3] in bookings:
            seen_bookings.setdefault(row[3], bookings[row[3]])
        elif row[2] == "GroupEvent" and row[4] in groups:
            seen_groups.setdefault(row[4], groups[row[4]])
            for booking_id, raw in reservations.get(row[4], []):
                seen_bookings.setdefault(booking_id, raw)
    page.bookings = list(seen_bookings.values())
    page.group_events = list(seen_groups.values())
    page.booking_ids = list(seen_bookings)
    page.group_ids = list(seen_groups)
    if "TimeSlot" in includes and slot_ids:
        slots = _by_id(conn, "SELECT id, raw FROM time_slot WHERE id IN ({marks})", slot_ids)
        page.time_slots = [slots[i] for i in dict.fromkeys(slot_ids) if i in slots]
    if "Service" in includes:
        page.services = _services_of(conn, page.bookings, page.group_events)
    if "Staff" in includes:
        row = conn.execute("SELECT raw FROM staff WHERE id = ?", (staff_id,)).fetchone()
        page.staff = row[0] if row else None
    return page


# ---- bookings ---------------------------------------------------------------------------
@dataclasses.dataclass
class HistoryPage:
    bookings: list[Raw]
    group_events: list[Raw]
    services: list[Raw]
    staff: list[Raw]
    merchants: list[Raw]
    last: tuple[str, str] | None
    staff_ids: list[int]
    group_ids: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class HistoryQuery:
    client_id: int
    merchant_id: int | None
    start: str | None
    end: str | None
    methods: tuple[str, ...]
    descending: bool


def history_page(
    conn: ReadConnection,
    query: HistoryQuery,
    visible: frozenset[int] | None,
    after: tuple[str, str] | None,
    size: int,
) -> HistoryPage:
    sql = "SELECT booking_id, starts_on, merchant_id, staff_id, group_event_id, raw FROM booking"
    sql += " WHERE client_id = ?"
    params: list[Any] = [query.client_id]
    if visible is not None:
        sql += f" AND merchant_id IN ({_marks(list(visible)) or 'NULL'})"
        params += list(visible)
    if query.merchant_id is not None:
        sql += " AND merchant_id = ?"
        params.append(query.merchant_id)
    if query.methods:
        sql += f" AND method IN ({_marks(query.methods)})"
        params += list(query.methods)
    if query.start is not None:
        sql += " AND starts_on >= ?"
        params.append(query.start)
    if query.end is not None:
        sql += " AND starts_on <= ?"
        params.append(query.end)
    if after is not None:
        op = "<" if query.descending else ">"
        sql += f" AND (starts_on {op} ? OR (starts_on = ? AND booking_id {op} ?))"
        params += [after[0], after[0], after[1]]
    order = "DESC" if query.descending else "ASC"
    sql += f" ORDER BY starts_on {order}, booking_id {order} LIMIT ?"
    rows = conn.execute(sql, [*params, size + 1]).fetchall()
    more = len(rows) > size
    rows = rows[:size]
    bookings = [r[5] for r in rows]
    group_ids = [r[4] for r in rows if r[4] is not None]
    groups = _by_id(conn, "SELECT id, raw FROM group_event WHERE id IN ({marks})", group_ids)
    group_events = [groups[i] for i in dict.fromkeys(group_ids) if i in groups]
    staff_ids = [r[3] for r in rows if r[3] is not None]
    staff = _by_id(conn, "SELECT id, raw FROM staff WHERE id IN ({marks})", staff_ids)
    merchant_ids = [r[2] for r in rows]
    merchants = _by_id(conn, "SELECT id, raw FROM merchant WHERE id IN ({marks})", merchant_ids)
    return HistoryPage(
        bookings=bookings,
        group_events=group_events,
        services=_services_of(conn, bookings, group_events),
        staff=[staff[i] for i in dict.fromkeys(staff_ids) if i in staff],
        merchants=[merchants[i] for i in dict.fromkeys(merchant_ids) if i in merchants],
        last=(rows[-1][1], rows[-1][0]) if more and rows else None,
        staff_ids=list(dict.fromkeys(staff_ids)),
        group_ids=list(dict.fromkeys(group_ids)),
    )


def client_known(conn: ReadConnection, client_id: int) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM client WHERE id = ? UNION ALL SELECT 1 FROM booking WHERE client_id = ? "
            "LIMIT 1",
            (client_id, client_id),
        ).fetchone()
        is not None
    )


def has_provisional_events(conn: ReadConnection, booking_id: str) -> bool:
    """Whether some calendar event of the booking carries an id the mirror derived."""
    row = conn.execute(
        "SELECT 1 FROM calendar_event WHERE booking_id = ? AND id < 0 LIMIT 1", (booking_id,)
    ).fetchone()
    return row is not None


def booking_with_group_events(
    conn: ReadConnection, booking_id: str
) -> tuple[Raw, int, int | None, list[Raw]] | None:
    """(raw, merchant id, staff id, its group events' raws), or None."""
    row = conn.execute(
        "SELECT raw, merchant_id, staff_id, group_event_id FROM booking WHERE booking_id = ?",
        (booking_id,),
    ).fetchone()
    if row is None:
        return None
    groups: list[Raw] = []
    if row[3] is not None:
        found = conn.execute("SELECT raw FROM group_event WHERE id = ?", (row[3],)).fetchone()
        groups = [found[0]] if found else []
    return row[0], row[1], row[2], groups


def booking_with_sync(
    conn: ReadConnection, booking_id: str
) -> tuple[tuple[Raw, int, int | None, list[Raw]] | None, list[tuple[Any, Any, int]]]:
    """``booking_with_group_events`` and its staff member's ``staff_sync``, in one read
    (one snapshot, one hand-off to the reader's thread instead of two)."""
    found = booking_with_group_events(conn, booking_id)
    staff_id = found[2] if found is not None else None
    return found, staff_sync(conn, [staff_id] if staff_id else [])


# ---- directory --------------------------------------------------------------------------
def merchants(
    conn: ReadConnection, group_id: int | None, visible: frozenset[int] | None
) -> list[tuple[int, Raw]]:
    rows = conn.execute("SELECT id, group_id, raw FROM merchant ORDER BY id").fetchall()
    return [
        (r[0], r[2])
        for r in rows
        if (group_id is None or r[1] == group_id) and (visible is None or r[0] in visible)
    ]


def one(conn: ReadConnection, table: str, ident: int) -> tuple[Raw, int | None] | None:
    """(raw, merchant id) of one merchant, staff, service or category; None if unknown."""
    column = "id" if table == "merchant" else "merchant_id"
    if table not in ("merchant", "staff", "service", "service_category"):
        raise ValueError(table)
    row = conn.execute(f"SELECT raw, {column} FROM {table} WHERE id = ?", (ident,)).fetchone()
    return (row[0], row[1]) if row else None


LISTS = {
    "staff": ("staff", {"merchantId": "merchant_id", "status": "status"}),
    "service": (
        "service",
        {
            "merchantId": "merchant_id",
            "serviceCategoryId": "category_id",
            "bookingMethod": "booking_method",
        },
    ),
    "serviceCategory": ("service_category", {"merchantId": "merchant_id"}),
}


def listing(
    conn: ReadConnection,
    kind: str,
    filters: dict[str, Any],
    visible: frozenset[int] | None,
    after: int | None,
    size: int,
    linked: tuple[str, str, str] | None = None,
) -> tuple[list[Raw], int | None]:
    """A cursor page of staff, services or categories by id; the last id when more follow.
    ``linked`` (entity, module id, external id): only the objects linked to that id."""
    table, columns = LISTS[kind]
    sql = f"SELECT id, merchant_id, raw FROM {table} WHERE 1 = 1"
    params: list[Any] = []
    if linked is not None:
        sql += (
            " AND id IN (SELECT entity_id FROM module_link WHERE entity = ? AND module_id = ?"
            " AND external_id = ?)"
        )
        params += list(linked)
    for name, value in filters.items():
        if value is not None and name in columns:
            sql += f" AND {columns[name]} = ?"
            params.append(value)
    if after is not None:
        sql += " AND id > ?"
        params.append(after)
    rows = conn.execute(sql + " ORDER BY id", params).fetchall()
    rows = [r for r in rows if visible is None or r[1] in visible]
    if filters.get("status") is not None and "status" not in columns:
        rows = [r for r in rows if json.loads(r[2]).get("status") == filters["status"]]
    more = len(rows) > size
    rows = rows[:size]
    return [r[2] for r in rows], (rows[-1][0] if more and rows else None)


def has_rows(conn: ReadConnection, table: str) -> bool:
    if table not in ("merchant", "staff"):
        raise ValueError(table)
    return conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None


# ---- clients ----------------------------------------------------------------------------
def client_with_links(
    conn: ReadConnection, client_id: int
) -> tuple[Raw, int | None, list[Raw], Any] | None:
    """(raw, merchant id, module links' raws, synced_at) of one client, or None."""
    row = conn.execute(
        "SELECT raw, merchant_id, synced_at FROM client WHERE id = ?", (client_id,)
    ).fetchone()
    if row is None:
        return None
    return row[0], row[1], links_of(conn, [client_id]), row[2]


def links_of(conn: ReadConnection, client_ids: Sequence[int]) -> list[Raw]:
    if not client_ids:
        return []
    return [
        r[0]
        for r in conn.execute(
            f"SELECT raw FROM module_link WHERE entity = 'client' AND entity_id IN "
            f"({_marks(client_ids)}) ORDER BY entity_id, module_id",
            list(client_ids),
        )
    ]


def module_link(conn: ReadConnection, client_id: int, module_id: str) -> Raw | None:
    row = conn.execute(
        "SELECT raw FROM module_link WHERE entity = 'client' AND entity_id = ? AND module_id = ?",
        (client_id, module_id),
    ).fetchone()
    return row[0] if row else None


def search_clients(
    conn: ReadConnection,
    criteria: dict[str, str],
    merchant_id: int | None,
    visible: frozenset[int] | None,
    limit: int,
) -> list[tuple[int, Raw]]:
    if "externalId" in criteria:
        rows = conn.execute(
            "SELECT c.id, c.merchant_id, c.raw FROM module_link l JOIN client c ON c.id = "
            "l.entity_id WHERE l.entity = 'client' AND l.module_id = ? AND l.external_id = ? "
            "ORDER BY c.id",
            (criteria["moduleId"], criteria["externalId"]),
        ).fetchall()
    else:
        sql = "SELECT id, merchant_id, raw FROM client WHERE merchant_id = ?"
        params: list[Any] = [merchant_id]
        if "lastName" in criteria:
            sql += " AND first_name = ? AND last_name = ?"
            params += [criteria["firstName"].strip().lower(), criteria["lastName"].strip().lower()]
        elif "email" in criteria:
            sql += " AND email = ?"
            params.append(criteria["email"].strip().lower())
        else:
            sql += " AND (phone_home = ? OR phone_mobile = ?)"
            phone = criteria["phoneNumber"].strip().lower()
            params += [phone, phone]
        rows = conn.execute(sql + " ORDER BY id", params).fetchall()
    return [(r[0], r[2]) for r in rows if visible is None or r[1] in visible][:limit]


# ---- freshness --------------------------------------------------------------------------
def staff_sync(conn: ReadConnection, staff_ids: Sequence[int]) -> list[tuple[Any, Any, int]]:
    """(last_success_at, last_attempt_at, consecutive_failures) of these staff members."""
    scopes = [f"staff:{i}" for i in dict.fromkeys(staff_ids)]
    if not scopes:
        return []
    rows = conn.execute(
        f"SELECT last_success_at, last_attempt_at, consecutive_failures FROM sync_state "
        f"WHERE scope IN ({_marks(scopes)})",
        scopes,
    )
    return [(row[0], row[1], row[2]) for row in rows]


def scope_sync(conn: ReadConnection, scope: str) -> tuple[Any, Any, int] | None:
    row = conn.execute(
        "SELECT last_success_at, last_attempt_at, consecutive_failures "
        "FROM sync_state WHERE scope = ?",
        (scope,),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


@dataclasses.dataclass
class CalendarRead:
    """Everything one calendar request needs, read in one snapshot."""

    merchant: int | None | bool
    covered: Any  # storage.coverage.Covered
    sync: list[tuple[Any, Any, int]]
    page: CalendarPage | None


def calendar_read(
    conn: ReadConnection,
    staff_id: int,
    start: str,
    end: str,
    types: Sequence[str],
    includes: Sequence[str],
    after: tuple[str, int] | None,
    size: int,
    partial: bool = False,
) -> CalendarRead:
    """The staff member's store, the coverage of the range, their sync state and, when
    the range is covered (or a later page is asked for, or ``partial``), the page."""
    from storage.coverage import read_coverage

    merchant = staff_merchant(conn, staff_id)
    covered = read_coverage(conn, f"staff:{staff_id}", start, end)
    page = None
    if merchant is not False and (covered.complete or after is not None or partial):
        page = calendar_page(conn, staff_id, start, end, types, includes, after, size)
    return CalendarRead(merchant, covered, staff_sync(conn, [staff_id]), page)
