"""Read-only queries behind the inspection commands (``booxi-mirror status``, ``calendar``,
``history``, ``booking``, ``clients search``, ``stats``, ``inbox``, ``db check``).

Functions of a ``storage.read_connection.ReadConnection``, in SQL both engines run. On
SQLite, ``connect_readonly()`` opens the file ``mode=ro`` with ``query_only`` on, so
nothing here can write, and under WAL it reads beside a serving mirror without blocking
it; on PostgreSQL, ``storage.reader.blocking_reads`` gives a read-only session.
``check_mirror`` says whether either is a mirror's database. Booxi's instants are the
stored texts (``storage.times.instant_key``); our ``_at`` columns are turned into aware
datetimes with ``storage.times.stored_utc``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from storage.errors import NotFoundError, UserError
from storage.read_connection import ReadConnection, at_parameter, is_sqlite
from storage.times import stored_utc

REQUIRED_TABLES = ("alembic_version", "booking", "calendar_event", "sync_state", "inbox_event")


class NotAMirrorError(UserError):
    """The database is missing, unreachable or not a mirror's; the message says which."""


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to the mirror's SQLite file, checked to be a mirror's."""
    if not path.is_file():
        raise NotAMirrorError(f"{path}: no such database file")
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        check_mirror(conn, str(path))
    except sqlite3.DatabaseError as error:
        conn.close()
        raise NotAMirrorError(f"{path}: not an SQLite database ({error})") from None
    except NotAMirrorError:
        conn.close()
        raise
    return conn


def table_names(conn: ReadConnection) -> list[str]:
    """The database's tables (the current schema's, on PostgreSQL), by name."""
    if is_sqlite(conn):
        sql = (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
    return [str(row[0]) for row in conn.execute(sql)]


def check_mirror(conn: ReadConnection, name: str) -> None:
    """``NotAMirrorError`` unless the database has the tables of a mirror's."""
    tables = set(table_names(conn))
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise NotAMirrorError(
            f"{name}: not a booxi-mirror database (no {', '.join(missing)} table)"
        )


def _at(value: Any) -> dt.datetime | None:
    return None if value is None else stored_utc(value)


def _json(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def person_name(obj: dict[str, Any]) -> str:
    """``firstName lastName`` of a staff member or client object (or its ``name``)."""
    parts = [obj.get("firstName"), obj.get("lastName")]
    name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return name or (obj.get("name") if isinstance(obj.get("name"), str) else "") or ""


# ---- status -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StaffSync:
    """One staff calendar's sync state, with the names of the staff member and store."""

    staff_id: int
    merchant_id: int | None
    staff_name: str
    merchant_name: str
    last_success_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    window: tuple[dt.datetime, dt.datetime] | None  # of the last successful poll
    covered: tuple[str, str] | None  # span of every poll so far (coverage, instant keys)
    last_error: str | None
    consecutive_failures: int


@dataclasses.dataclass(frozen=True)
class ScopeSync:
    last_success_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_error: str | None
    consecutive_failures: int


_STAFF_SYNC = """
SELECT s.staff_id, s.merchant_id, st.raw, m.raw, s.last_success_at, s.last_attempt_at,
       s.window_start, s.window_end, c.starts_on, c.ends_on, s.last_error,
       s.consecutive_failures
FROM sync_state s
LEFT JOIN staff st ON st.id = s.staff_id
LEFT JOIN merchant m ON m.id = coalesce(st.merchant_id, s.merchant_id)
LEFT JOIN coverage c ON c.scope = s.scope AND c.kind = 'poll'
WHERE s.kind = 'staff' AND s.staff_id IS NOT NULL
  AND (st.id IS NOT NULL
       OR NOT EXISTS (SELECT 1 FROM staff x WHERE x.merchant_id = s.merchant_id))
UNION ALL
SELECT st.id, st.merchant_id, st.raw, m.raw, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0
FROM staff st
LEFT JOIN merchant m ON m.id = st.merchant_id
WHERE NOT EXISTS (SELECT 1 FROM sync_state s WHERE s.kind = 'staff' AND s.staff_id = st.id)
"""


def list_staff_syncs(conn: ReadConnection, merchant_ids: Sequence[int] = ()) -> list[StaffSync]:
    """Every staff calendar that counts for freshness (as ``GET /readyz`` counts them: a
    staff member Booxi no longer lists is left out, one never polled is included), by
    store then staff id; only those of ``merchant_ids`` when given."""
    found = []
    for row in conn.execute(_STAFF_SYNC):
        if merchant_ids and row[1] not in merchant_ids:
            continue
        start, end = _at(row[6]), _at(row[7])
        found.append(
            StaffSync(
                staff_id=row[0],
                merchant_id=row[1],
                staff_name=person_name(_json(row[2])),
                merchant_name=str(_json(row[3]).get("name") or ""),
                last_success_at=_at(row[4]),
                last_attempt_at=_at(row[5]),
                window=(start, end) if start and end else None,
                covered=(row[8], row[9]) if row[8] else None,
                last_error=row[10],
                consecutive_failures=row[11] or 0,
            )
        )
    return sorted(found, key=lambda s: (s.merchant_id or 0, s.staff_id))


def find_scope_sync(conn: ReadConnection, scope: str) -> ScopeSync | None:
    row = conn.execute(
        "SELECT last_success_at, last_attempt_at, last_error, consecutive_failures "
        "FROM sync_state WHERE scope = ?",
        (scope,),
    ).fetchone()
    return None if row is None else ScopeSync(_at(row[0]), _at(row[1]), row[2], row[3] or 0)


def find_latest_webhook_at(conn: ReadConnection) -> dt.datetime | None:
    return _at(conn.execute("SELECT max(received_at) FROM inbox_event").fetchone()[0])


# ---- bookings ---------------------------------------------------------------------------
def resolve_external_id(conn: ReadConnection, module_id: str, external_id: str) -> list[int]:
    """Ids of the clients linked to ``external_id`` in ``module_id`` (one per store, at most)."""
    rows = conn.execute(
        "SELECT entity_id FROM module_link WHERE entity = 'client' AND module_id = ? "
        "AND external_id = ? ORDER BY entity_id",
        (module_id, external_id),
    )
    return [row[0] for row in rows]


def list_client_bookings(
    conn: ReadConnection, client_ids: Sequence[int], start: str | None, end: str | None
) -> list[str]:
    """Stored JSON of the clients' bookings starting in ``[start, end]``, by start time."""
    if not client_ids:
        return []
    sql = f"SELECT raw FROM booking WHERE client_id IN ({','.join('?' * len(client_ids))})"
    params: list[Any] = list(client_ids)
    if start is not None:
        sql += " AND starts_on >= ?"
        params.append(start)
    if end is not None:
        sql += " AND starts_on <= ?"
        params.append(end)
    return [row[0] for row in conn.execute(sql + " ORDER BY starts_on, booking_id", params)]


@dataclasses.dataclass(frozen=True)
class StoredBooking:
    raw: str
    source: str
    synced_at: dt.datetime
    modified_on: str
    events: list[tuple[str, str, dt.datetime, bool]]  # raw, source, synced_at, provisional
    inbox: list[InboxRow]


def get_booking(conn: ReadConnection, booking_id: str) -> StoredBooking:
    """The stored booking with its provenance, calendar events and webhook events."""
    row = conn.execute(
        "SELECT raw, source, synced_at, modified_on FROM booking WHERE booking_id = ?",
        (booking_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"booking {booking_id} is not in the mirror")
    events = [
        (r[0], r[1], stored_utc(r[2]), bool(r[3]))
        for r in conn.execute(
            "SELECT raw, source, synced_at, provisional FROM calendar_event "
            "WHERE booking_id = ? ORDER BY starts_on, id",
            (booking_id,),
        )
    ]
    inbox = [
        _inbox_row(r)
        for r in conn.execute(
            f"SELECT {_INBOX_COLUMNS} FROM inbox_event WHERE booking_id = ? ORDER BY seq",
            (booking_id,),
        )
    ]
    return StoredBooking(row[0], row[1], stored_utc(row[2]), row[3], events, inbox)


# ---- clients ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ClientQuery:
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    external: tuple[str, str] | None = None  # (module id, external id)
    merchant_id: int | None = None


@dataclasses.dataclass(frozen=True)
class ClientMatch:
    raw: str
    merchant_id: int | None
    source: str
    synced_at: dt.datetime
    links: list[tuple[str, str]]  # (module id, external id)


def _digits(value: str | None) -> str:
    return re.sub(r"\D", "", value or "")


def _phone_matches(stored: str | None, wanted: str) -> bool:
    """Same digits, or the stored number ends with the (7 digits or more) given."""
    digits = _digits(stored)
    return bool(digits) and (digits == wanted or (len(wanted) >= 7 and digits.endswith(wanted)))


def search_clients(conn: ReadConnection, query: ClientQuery, limit: int) -> list[ClientMatch]:
    """Clients matching every criterion given, by id.

    A name matches case-insensitively as ``first last``, split at any space ("Mary Ann
    Smith" is tried as Mary + Ann Smith and as Mary Ann + Smith); a single word matches a
    first or last name. A phone number matches on its digits, ignoring punctuation and
    a missing country code.
    """
    sql = "SELECT id, merchant_id, raw, source, synced_at FROM client WHERE 1 = 1"
    params: list[Any] = []
    if query.merchant_id is not None:
        sql += " AND merchant_id = ?"
        params.append(query.merchant_id)
    if query.email is not None:
        sql += " AND email = ?"
        params.append(query.email.strip().lower())
    if query.name is not None:
        words = query.name.lower().split()
        if len(words) == 1:
            sql += " AND (first_name = ? OR last_name = ?)"
            params += words * 2
        else:
            splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
            sql += " AND (" + " OR ".join(["(first_name = ? AND last_name = ?)"] * len(splits))
            sql += ")"
            params += [part for split in splits for part in split]
    if query.external is not None:
        sql += (
            " AND id IN (SELECT entity_id FROM module_link WHERE entity = 'client' "
            "AND module_id = ? AND external_id = ?)"
        )
        params += list(query.external)
    if query.phone is None:
        rows = conn.execute(sql + " ORDER BY id LIMIT ?", [*params, limit]).fetchall()
    else:  # compared here, in Python: the same on both engines, no SQL function to add
        wanted = _digits(query.phone)
        sql = sql.replace("SELECT ", "SELECT phone_mobile, phone_home, ", 1)
        rows = [
            row[2:]
            for row in conn.execute(sql + " ORDER BY id", params)
            if _phone_matches(row[0], wanted) or _phone_matches(row[1], wanted)
        ][:limit]
    links: dict[int, list[tuple[str, str]]] = {}
    for row in rows:
        links[row[0]] = [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT module_id, external_id FROM module_link WHERE entity = 'client' "
                "AND entity_id = ? ORDER BY module_id",
                (row[0],),
            )
        ]
    return [ClientMatch(r[2], r[1], r[3], stored_utc(r[4]), links[r[0]]) for r in rows]


# ---- stats ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Stats:
    tables: dict[str, int]
    database_bytes: int | None  # PostgreSQL's size of the database; None on SQLite (a file)
    free_bytes: int | None  # SQLite's free pages (what vacuum reclaims); None on PostgreSQL
    inbox_events: int
    inbox_body_bytes: int
    oldest_booking: str | None
    newest_booking: str | None
    pii: dict[str, int]


PERSON_FIELDS = ("firstName", "lastName", "email", "homePhoneNumber", "mobilePhoneNumber")
BOOKING_PERSONS = (("client",),)
BODY_PERSONS = tuple(
    (envelope, *path)
    for envelope in ("content", "eventContent")
    for path in (("client",), ("booking", "client"))
)
PII_BATCH = 1000  # rows read per query while counting personal data


def _has_person(text: str | None, paths: Sequence[tuple[str, ...]]) -> bool:
    """The JSON ``text`` has, at one of ``paths``, a person with a non-empty name, e-mail
    or phone (a stripped client block keeps its keys, emptied: not counted)."""
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return False
    for path in paths:
        found = data
        for key in path:
            found = found.get(key) if isinstance(found, dict) else None
        if isinstance(found, dict) and any(found.get(f) not in (None, "") for f in PERSON_FIELDS):
            return True
    return False


def _count_persons(
    conn: ReadConnection, table: str, key: str, column: str, paths: Sequence[tuple[str, ...]]
) -> int:
    """Rows of ``table`` whose JSON ``column`` has a person (``_has_person``), read by
    ``key`` in batches. Judged in Python on both engines: PostgreSQL 15 has no test of a
    text's JSON validity, and a webhook body may hold what its ``jsonb`` refuses (NaN,
    ``\\u0000``)."""
    count, after = 0, None
    while True:
        sql = f"SELECT {key}, {column} FROM {table}"
        params: list[Any] = []
        if after is not None:
            sql += f" WHERE {key} > ?"
            params.append(after)
        rows = conn.execute(sql + f" ORDER BY {key} LIMIT ?", [*params, PII_BATCH]).fetchall()
        count += sum(_has_person(row[1], paths) for row in rows)
        if len(rows) < PII_BATCH:
            return count
        after = rows[-1][0]


def read_stats(conn: ReadConnection) -> Stats:
    """Rows per table, the database's size or free space, the inbox's size, the booking
    range and PII-bearing rows: client rows with a name, e-mail or phone; bookings whose
    client block has one; inbox events whose body carries a client (alone or in a
    booking) that has one."""
    tables = {
        name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        for name in table_names(conn)
    }
    inbox = conn.execute("SELECT count(*), coalesce(sum(length(body)), 0) FROM inbox_event")
    inbox_events, inbox_bytes = inbox.fetchone()
    oldest, newest = conn.execute("SELECT min(starts_on), max(starts_on) FROM booking").fetchone()
    client_pii = " OR ".join(
        f"{c} != ''" for c in ("first_name", "last_name", "email", "phone_home", "phone_mobile")
    )
    pii = {
        "client": conn.execute(f"SELECT count(*) FROM client WHERE {client_pii}").fetchone()[0],
        "booking": _count_persons(conn, "booking", "booking_id", "raw", BOOKING_PERSONS),
        "inbox_event": _count_persons(conn, "inbox_event", "seq", "body", BODY_PERSONS),
    }
    database_bytes = free_bytes = None
    if is_sqlite(conn):
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        free_bytes = page_size * conn.execute("PRAGMA freelist_count").fetchone()[0]
    else:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        database_bytes = int(size)
    return Stats(
        tables=tables,
        database_bytes=database_bytes,
        free_bytes=free_bytes,
        inbox_events=int(inbox_events),
        inbox_body_bytes=int(inbox_bytes),
        oldest_booking=oldest,
        newest_booking=newest,
        pii=pii,
    )


# ---- inbox ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class InboxRow:
    seq: int
    event_id: str
    event_type: str
    received_at: dt.datetime
    created_on: str | None
    verified: str
    outcome: str
    detail: str
    duplicates: int
    booking_id: str | None
    client_id: int | None


_INBOX_COLUMNS = (
    "seq, event_id, event_type, received_at, created_on, verified, outcome, detail, "
    "duplicates, booking_id, client_id"
)


def _inbox_row(row: Sequence[Any]) -> InboxRow:
    return InboxRow(
        row[0],
        row[1],
        row[2],
        stored_utc(row[3]),
        row[4],
        row[5],
        row[6],
        row[7] or "",
        row[8] or 0,
        row[9],
        row[10],
    )


def list_inbox(conn: ReadConnection, since: dt.datetime | None, limit: int) -> list[InboxRow]:
    """The ``limit`` latest events received since ``since``, oldest first."""
    sql = f"SELECT {_INBOX_COLUMNS} FROM inbox_event"
    params: list[Any] = []
    if since is not None:
        sql += " WHERE received_at >= ?"
        params.append(at_parameter(conn, since))
    rows = conn.execute(sql + " ORDER BY seq DESC LIMIT ?", [*params, limit]).fetchall()
    return [_inbox_row(r) for r in reversed(rows)]


NOT_APPLIED = ("ignored", "failed")  # inbox outcomes that left the mirror unchanged


def list_inbox_failures(
    conn: ReadConnection, merchant_ids: Sequence[int] | None, limit: int
) -> list[InboxRow]:
    """The ``limit`` latest events not applied (``NOT_APPLIED``), newest first; with
    ``merchant_ids``, only those about a booking the mirror holds at those stores (an
    event of another store, or of a booking never stored, is not shown to a store)."""
    sql = f"SELECT {_INBOX_COLUMNS} FROM inbox_event WHERE outcome IN (?, ?)"
    params: list[Any] = list(NOT_APPLIED)
    if merchant_ids is not None:
        if not merchant_ids:
            return []
        sql += (
            " AND booking_id IN (SELECT booking_id FROM booking WHERE merchant_id IN "
            f"({','.join('?' * len(merchant_ids))}))"
        )
        params += list(merchant_ids)
    rows = conn.execute(sql + " ORDER BY seq DESC LIMIT ?", [*params, limit]).fetchall()
    return [_inbox_row(r) for r in rows]


def get_inbox_event(conn: ReadConnection, event_id: str) -> tuple[InboxRow, str]:
    """One stored event and its body as received."""
    row = conn.execute(
        f"SELECT {_INBOX_COLUMNS}, body FROM inbox_event WHERE event_id = ?", (event_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"event {event_id} is not in the inbox")
    return _inbox_row(row), row[11]


def list_inbox_bodies(
    conn: ReadConnection, *, since: dt.datetime | None = None, event_id: str | None = None
) -> list[tuple[int, str, str, str]]:
    """(seq, event id, verified, body) of the events to replay, in the order received."""
    sql = "SELECT seq, event_id, verified, body FROM inbox_event"
    params: list[Any] = []
    if event_id is not None:
        sql += " WHERE event_id = ?"
        params.append(event_id)
    elif since is not None:
        sql += " WHERE received_at >= ?"
        params.append(at_parameter(conn, since))
    return [(r[0], r[1], r[2], r[3]) for r in conn.execute(sql + " ORDER BY seq", params)]


# ---- database ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Check:
    integrity: list[str] | None  # ["ok"] when sound; None: not checked (PostgreSQL)
    foreign_keys: list[tuple[Any, ...]]
    revision: str | None


def check_database(conn: ReadConnection) -> Check:
    """SQLite: ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check``; and the schema
    revision. PostgreSQL enforces its foreign keys as it writes and has no integrity check
    a read-only session can run (``pg_amcheck`` is the server's own tool): the revision
    only."""
    integrity: list[str] | None = None
    foreign_keys: list[tuple[Any, ...]] = []
    if is_sqlite(conn):
        integrity = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        foreign_keys = [tuple(row) for row in conn.execute("PRAGMA foreign_key_check")]
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return Check(integrity, foreign_keys, row[0] if row else None)
