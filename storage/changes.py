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
- ``*``: everything (a personal-data block; on PostgreSQL also a ``TRUNCATE``).

An update that changes only bookkeeping (``synced_at``, ``source``) leaves no row.

SQLite: ``seq`` grows with every row and is never reused (``AUTOINCREMENT``); since SQLite
commits one writer at a time, rows become visible in ``seq`` order, so a reader that
has applied everything up to ``seq`` N has missed nothing below it (``Probe``).

PostgreSQL (migration 0010): ``seq`` is no such order (transactions commit in any order,
rolled-back ones leave holes), so every row also carries its transaction's id (``tx``,
``pg_current_xact_id()``, kept as a ``bigint``: a type the models' reflection knows,
and 64 bits hold it) and when it was written (``at``), and the triggers send
``NOTIFY booxi_mirror_changes`` with the transaction's id (PostgreSQL folds the
repeats: one per transaction, delivered after its commit, in commit order, never for
work rolled back). This process's writer reads its own transaction's rows just before
its commit and hands them over once it committed (``note_transaction``,
``transaction_changes``); other processes' transactions arrive through a
``ChangeFeed``. Rows are pruned by age (``prune_older``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# Tables and the tags a row of each names: (tag, lo, hi) SQL expressions over {r}, the
# row (OLD or NEW), the same on both engines but for {scope}: the row's scope without its
# ``@store`` suffix, in each engine's words (``UNSUFFIXED``). A NULL tag (an id that is
# NULL) names nothing.
_SCOPE = "{scope}"
UNSUFFIXED = {
    "sqlite": "CASE WHEN instr({r}.scope, '@') > 0 THEN substr({r}.scope, 1, instr({r}.scope, '@') - 1) ELSE {r}.scope END",  # noqa: E501
    "postgresql": "split_part({r}.scope, '@', 1)",
}
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


_OPS = (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",)))


def _selects(dialect: str, table: str, rows: Sequence[str]) -> str:
    """One ``SELECT tag, lo, hi`` per tag of ``table`` and row, in a ``UNION``."""

    def sql(expression: str, r: str) -> str:
        return expression.format(r=r, scope=UNSUFFIXED[dialect].format(r=r))

    return " UNION ".join(
        f"SELECT {sql(tag, r)} AS tag, {sql(lo, r)} AS lo, {sql(hi, r)} AS hi"
        for r in rows
        for tag, lo, hi in TAGS[table]
    )


def trigger_statements(columns: dict[str, list[str]]) -> list[str]:
    """``CREATE TRIGGER`` statements (SQLite) for every table of ``TAGS``, given each
    table's columns."""
    statements = []
    for table in TAGS:
        compared = [c for c in columns[table] if c not in BOOKKEEPING]
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in compared)
        for op, rows in _OPS:
            selects = _selects("sqlite", table, rows)
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


CHANNEL = "booxi_mirror_changes"
APPLICATION_NAME = "booxi-mirror change feed"  # as pg_stat_activity shows the connection
_OWN_OPTIONS = frozenset({"timeout", "server_settings", "loop", "dsn"})
# What only PostgreSQL's change_log has (migration 0010; the models declare neither).
POSTGRES_ONLY_COLUMNS = ("tx", "at")
POSTGRES_ONLY_INDEXES = ("ix_change_log_tx", "ix_change_log_at")


def postgres_trigger_statements(columns: dict[str, list[str]]) -> list[str]:
    """PostgreSQL's equivalent of ``trigger_statements``: per table of ``TAGS`` one
    plpgsql function writing the same rows (``tx`` and ``at`` by their defaults), then
    ``NOTIFY`` with the transaction's id if it wrote any, and the three triggers of the
    same names, the update's only when a column besides bookkeeping ``IS DISTINCT FROM``
    what it was. Besides (PostgreSQL has it, SQLite not): a ``TRUNCATE``, which fires no
    row trigger, writes ``*`` (everything)."""
    statements = [
        "CREATE FUNCTION change_log_truncated() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN INSERT INTO change_log (tag) VALUES ('*'); "
        f"PERFORM pg_notify('{CHANNEL}', pg_current_xact_id()::text); RETURN NULL; END $$"
    ]
    for table in TAGS:
        branches = " ".join(
            f"{'IF' if index == 0 else 'ELSIF'} TG_OP = '{op}' THEN "
            f"INSERT INTO change_log (tag, lo, hi) SELECT tag, lo, hi FROM "
            f"({_selects('postgresql', table, rows)}) AS c WHERE tag IS NOT NULL;"
            for index, (op, rows) in enumerate(_OPS)
        )
        statements.append(
            f"CREATE FUNCTION change_log_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"DECLARE written bigint; BEGIN {branches} END IF; "
            f"GET DIAGNOSTICS written = ROW_COUNT; "
            f"IF written > 0 THEN PERFORM pg_notify('{CHANNEL}', pg_current_xact_id()::text); "
            f"END IF; RETURN NULL; END $$"
        )
        compared = [c for c in columns[table] if c not in BOOKKEEPING]
        changed = " OR ".join(f'OLD."{c}" IS DISTINCT FROM NEW."{c}"' for c in compared)
        for op, _ in _OPS:
            when = f" WHEN ({changed})" if op == "UPDATE" else ""
            statements.append(
                f"CREATE TRIGGER change_log_{table}_{op.lower()} AFTER {op} ON {table} "
                f"FOR EACH ROW{when} EXECUTE FUNCTION change_log_{table}()"
            )
        statements.append(
            f"CREATE TRIGGER change_log_{table}_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION change_log_truncated()"
        )
    return statements


def drop_postgres_trigger_statements() -> list[str]:
    return [
        *(
            f"DROP TRIGGER IF EXISTS change_log_{table}_{op} ON {table}"
            for table in TAGS
            for op in ("insert", "update", "delete", "truncate")
        ),
        *(f"DROP FUNCTION IF EXISTS change_log_{table}()" for table in TAGS),
        "DROP FUNCTION IF EXISTS change_log_truncated()",
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
    """Asks, in about a microsecond, whether the change log may hold rows after a given
    ``seq``, and which. Its own read-only connection, used from one thread (the event
    loop's).

    ``last_seq()`` is asked before every ready answer, so it must cost next to nothing
    when nothing changed. SQLite itself tells: in WAL mode every committed transaction
    rewrites the WAL-index header at the start of the ``-shm`` file (its ``iChange``
    counter, ``mxFrame`` and checksums; https://www.sqlite.org/walformat.html, 2.1), and
    a transaction is visible to readers only once that header says so. The probe reads
    those 48 bytes (one ``pread``) and queries the log only when they differ from what
    they were before its last query, which read them first. Any difference (a commit,
    a checkpoint, a torn read) costs one query, as every call cost before (10 to 30
    microseconds: the query takes and drops a WAL read lock); no ``-shm`` file (not in
    WAL mode) queries every time.

    ``pread``, not a memory map of the header: SQLite truncates the ``-shm`` file when a
    connection opens it with no other holding it, and reading a mapped page past the
    file's end kills the process with SIGBUS (tried: ``serve`` exited with -7 in two of
    four ``bench.read_calendar`` runs, for no measurable gain)."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        self._conn.execute("PRAGMA query_only=ON")
        self._conn.execute("PRAGMA busy_timeout=1000")
        self._seq = last_seq(self._conn)  # opens the -shm file, which it then keeps open
        try:
            self._shm: int | None = os.open(f"{path}-shm", os.O_RDONLY)
        except OSError:
            self._shm = None
        self._header = b""

    def last_seq(self) -> int:
        header = b""
        if self._shm is not None:
            header = os.pread(self._shm, _WAL_INDEX_HEADER, 0)
            if header == self._header and len(header) == _WAL_INDEX_HEADER:
                return self._seq
        self._seq = last_seq(self._conn)
        self._header = header
        return self._seq

    def since(self, seq: int) -> list[Change]:
        return changes_since(self._conn, seq)

    def close(self) -> None:
        if self._shm is not None:
            os.close(self._shm)
            self._shm = None
        self._conn.close()


_WAL_INDEX_HEADER = 48  # bytes: the first copy of the WAL-index header


# ---- PostgreSQL: by transaction ----------------------------------------------------------
_TX = "booxi_mirror_tx"
_ROWS_OF = (
    "SELECT tx::text AS tx, seq, tag, lo, hi FROM change_log "
    "WHERE tx = ANY($1::text[]::bigint[]) ORDER BY seq"
)


def note_transaction(conn: Connection) -> None:
    """Read, inside the transaction about to commit, the rows it wrote (one indexed
    query), for ``transaction_changes`` once it committed (PostgreSQL)."""
    rows = conn.exec_driver_sql(
        "SELECT tx::text, seq, tag, lo, hi FROM change_log "
        "WHERE tx = (SELECT pg_current_xact_id_if_assigned()::text::bigint) ORDER BY seq"
    ).all()
    conn.info[_TX] = (rows[0][0] if rows else None, [Change._make(row[1:]) for row in rows])


def transaction_changes(conn: Connection) -> tuple[str | None, list[Change]]:
    """The id of the transaction ``note_transaction`` saw last on this connection (None
    if it wrote no row), and exactly its rows (PostgreSQL; nothing another transaction
    wrote)."""
    found: tuple[str | None, list[Change]] = conn.info.get(_TX, (None, []))
    return found


def prune_older(conn: Connection, seconds: float) -> None:
    """Forget the rows written more than ``seconds`` ago (PostgreSQL: a follower reads a
    transaction's rows within a second of its commit, or has lost its feed and dropped
    everything)."""
    conn.execute(
        text("DELETE FROM change_log WHERE at < now() - make_interval(secs => :seconds)"),
        {"seconds": seconds},
    )


class ChangeFeedLostError(ConnectionError):
    """The feed's connection is gone: transactions may have committed unseen."""


class ChangeFeed:
    """Transactions that commit on a PostgreSQL database, as they commit: its own
    ``asyncpg`` connection, ``LISTEN booxi_mirror_changes``; ``next`` hands over the rows
    of each transaction notified since the last call (read on the same connection, so
    they are committed and visible). Used from one task."""

    def __init__(
        self, engine: AsyncEngine, *, connect_s: float = 5.0, answer_s: float = 1.0
    ) -> None:
        # where and how the engine connects (host, credentials, ``?ssl=`` and the like),
        # as far as asyncpg.connect takes it
        _, options = engine.dialect.create_connect_args(engine.url)
        accepted = inspect.signature(asyncpg.connect).parameters
        self._options = {
            k: v for k, v in options.items() if k in accepted and k not in _OWN_OPTIONS
        }
        self._connect_s = connect_s
        self._answer_s = answer_s
        self._conn: asyncpg.Connection | None = None
        self._pending: list[str] = []
        self._wake = asyncio.Event()
        self._lost = False

    async def open(self) -> None:
        """Connect and listen (within ``connect_s``); raises what connecting raised."""
        self._conn = await asyncpg.connect(
            **self._options,
            timeout=self._connect_s,
            server_settings={"application_name": APPLICATION_NAME},
        )
        self._conn.add_termination_listener(self._terminated)
        async with asyncio.timeout(self._connect_s):
            await self._conn.add_listener(CHANNEL, self._notified)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._pending.append(payload)
        self._wake.set()

    def _terminated(self, _conn: object) -> None:
        self._lost = True
        self._wake.set()

    async def next(self, idle_s: float) -> dict[str, list[Change]]:
        """The rows of every transaction notified since the last call, by transaction id
        (an id without rows: its rows were pruned before they were read). Waits up to
        ``idle_s`` for one; with none, checks that the server answers (within
        ``answer_s``) and returns nothing. Raises ``ChangeFeedLostError`` if the
        connection is gone or the server did not answer."""
        conn = self._conn
        if conn is None:
            raise ChangeFeedLostError("the change feed is not open")
        if not self._pending and not self._lost:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle_s):  # wait_for (3.11) may swallow a cancel
                    await self._wake.wait()
        if self._lost or conn.is_closed():
            raise ChangeFeedLostError("the change feed's connection was closed")
        try:
            if not self._pending:
                await conn.fetchval("SELECT 1", timeout=self._answer_s)
                return {}
            txs, self._pending = list(dict.fromkeys(self._pending)), []
            rows = await conn.fetch(_ROWS_OF, txs, timeout=self._answer_s)
        except Exception as error:  # a server error, a timeout, a connection in pieces
            self._lost = True
            raise ChangeFeedLostError(str(error) or type(error).__name__) from error
        found: dict[str, list[Change]] = {tx: [] for tx in txs}
        for row in rows:
            found.setdefault(str(row["tx"]), []).append(
                Change(row["seq"], row["tag"], row["lo"], row["hi"])
            )
        return found

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._answer_s):
                    await conn.close()
            if not conn.is_closed():
                conn.terminate()
