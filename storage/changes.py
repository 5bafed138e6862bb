"""What changed in the database, for the read API's ready answers (``api.ready``).

Every write to a table the read API serves from leaves rows in ``change_log`` (written by
database triggers, migration 0007, so no path can forget: the poller, webhooks, writes,
fills, audit repairs, resyncs, retention and erasure, whether in ``serve`` or in a CLI
command beside it). A row names what the change can affect, as a *tag* with an optional
range of instants (stored keys, ``storage.times.instant_key``):

- ``staff:{id}`` with the span of an event, a time slot or a booking of that staff member
  (what a calendar shows);
- ``booking:{id}``, ``client:{id}`` (a client's record, links and bookings: a history),
  ``group:{id}`` (a group event or a reservation of it);
- ``ref``: reference data (stores, staff, services, categories, who performs what);
- ``cover:{scope}`` with a range, and ``sync:{scope}``: coverage and sync state, the
  scope without its ``@store`` suffix (``cover:staff:12``, ``sync:client:5``);
- ``staff:``, ``service:`` or ``merchant:`` with an id for a module link;
- ``*``: everything (a personal-data block).

An update that changes only bookkeeping (``synced_at``, ``source``) leaves no row.
``seq`` grows with every row and is never reused (``AUTOINCREMENT``); since SQLite
commits one writer at a time, rows become visible in ``seq`` order, so a reader that
has applied everything up to ``seq`` N has missed nothing below it.
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple, Protocol

# Tables and the tags a row of each names: (tag, lo, hi) SQL expressions over {r}, the
# row (OLD or NEW). A NULL tag (an id that is NULL) names nothing.
_SCOPE = "CASE WHEN instr({r}.scope, '@') > 0 THEN substr({r}.scope, 1, instr({r}.scope, '@') - 1) ELSE {r}.scope END"  # noqa: E501
TAGS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "merchant": (("'ref'", "NULL", "NULL"),),
    "staff": (("'ref'", "NULL", "NULL"),),
    "service_category": (("'ref'", "NULL", "NULL"),),
    "service": (("'ref'", "NULL", "NULL"),),
    "service_staff": (("'ref'", "NULL", "NULL"),),
    "client": (("'client:' || {r}.id", "NULL", "NULL"),),
    "module_link": (("{r}.entity || ':' || {r}.entity_id", "NULL", "NULL"),),
    "booking": (
        ("'booking:' || {r}.booking_id", "NULL", "NULL"),
        ("'client:' || {r}.client_id", "NULL", "NULL"),
        ("'staff:' || {r}.staff_id", "{r}.starts_on", "{r}.ends_on"),
        ("'group:' || {r}.group_event_id", "NULL", "NULL"),
    ),
    "calendar_event": (("'staff:' || {r}.staff_id", "{r}.starts_on", "{r}.ends_on"),),
    "group_event": (("'group:' || {r}.id", "NULL", "NULL"),),
    "time_slot": (("'staff:' || {r}.staff_id", "{r}.starts_on", "{r}.ends_on"),),
    "coverage": (("'cover:' || " + _SCOPE, "{r}.starts_on", "{r}.ends_on"),),
    "sync_state": (("'sync:' || " + _SCOPE, "NULL", "NULL"),),
    "pii_block": (("'*'", "NULL", "NULL"),),
}
# Columns whose change alone changes no answer.
BOOKKEEPING = frozenset({"synced_at", "source"})


def trigger_statements(columns: dict[str, list[str]]) -> list[str]:
    """``CREATE TRIGGER`` statements (SQLite) for every table of ``TAGS``, given each
    table's columns."""
    statements = []
    for table, tags in TAGS.items():
        compared = [c for c in columns[table] if c not in BOOKKEEPING]
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in compared)
        for op, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
            selects = " UNION ".join(
                f"SELECT {tag.format(r=r)} AS tag, {lo.format(r=r)} AS lo, {hi.format(r=r)} AS hi"
                for r in rows
                for tag, lo, hi in tags
            )
            when = f" WHEN {changed}" if op == "UPDATE" else ""
            statements.append(
                f"CREATE TRIGGER change_log_{table}_{op.lower()} AFTER {op} ON {table}{when} "
                f"BEGIN INSERT INTO change_log (tag, lo, hi) SELECT tag, lo, hi FROM "
                f"({selects}) WHERE tag IS NOT NULL; END"
            )
    return statements


def drop_trigger_statements() -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS change_log_{table}_{op}"
        for table in TAGS
        for op in ("insert", "update", "delete")
    ]


class Change(NamedTuple):
    seq: int
    tag: str
    lo: str | None
    hi: str | None


class _Executes(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


def changes_since(conn: _Executes, seq: int, limit: int = 50_000) -> list[Change]:
    """The rows after ``seq``, oldest first (a plain ``sqlite3`` connection, or the
    DB-API connection under a SQLAlchemy one)."""
    rows = conn.execute(
        "SELECT seq, tag, lo, hi FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?",
        (seq, limit),
    ).fetchall()
    return [Change._make(row) for row in rows]


def last_seq(conn: _Executes) -> int:
    """The newest row's ``seq`` (0 when none was ever written)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'change_log'").fetchone()
    return int(row[0]) if row else 0


def prune(conn: _Executes, keep: int = 100_000) -> None:
    """Forget all but the newest ``keep`` rows (a reader that falls further behind
    than that starts afresh: ``api.ready`` drops everything)."""
    conn.execute(
        "DELETE FROM change_log WHERE seq <= (SELECT max(seq) FROM change_log) - ?", (keep,)
    )


class Probe:
    """Asks, in microseconds, whether the change log holds rows after a given ``seq`` (one
    indexed lookup of ``sqlite_sequence``), and which. Its own read-only connection,
    used from one thread (the event loop's): a query of a few microseconds there costs
    less than a hand-off to a reader thread."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        self._conn.execute("PRAGMA query_only=ON")
        self._conn.execute("PRAGMA busy_timeout=1000")

    def last_seq(self) -> int:
        return last_seq(self._conn)

    def since(self, seq: int) -> list[Change]:
        return changes_since(self._conn, seq)

    def close(self) -> None:
        self._conn.close()
