"""``make_engine(url)``: the async engine, with SQLite set up for a long-running service.

SQLite: WAL (readers never block the writer), ``synchronous=NORMAL`` (a commit survives
a killed process; only a power cut can lose the last ones), secure delete (what is
deleted or overwritten is zeroed in the file), a 5 s busy timeout for a
second process (the CLI) touching the file, foreign keys on, and transactions that a
writer may open with ``BEGIN IMMEDIATE`` (``execution_options(begin="BEGIN IMMEDIATE")``)
so that two writers queue instead of failing on a lock upgrade.

No row value reaches a log line, at any verbosity (``-vv`` turns the libraries' DEBUG
lines on): every engine made here has ``hide_parameters=True`` (statements are logged,
their parameters not, nor in an error's text), and ``quiet_row_values()`` (applied by
``make_engine``) keeps out the two library lines that would still carry them:
SQLAlchemy's ``Row (...)`` at DEBUG (the rows a query returns: clients' names, e-mails,
phones) and aiosqlite's ``executing``/``operation ... completed`` (the repr of each call,
with the statement's parameters), which are shortened to the call's name.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

BUSY_TIMEOUT_S = 5  # how long an ordinary write waits for the lock (migrations: storage.migrate)
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",  # erased personal data is zeroed, not left in free space
    "PRAGMA temp_store=MEMORY",
    "PRAGMA mmap_size=268435456",
)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """``hide_parameters``: neither a log line nor an error's text carries row values
    (clients' data)."""
    quiet_row_values()
    engine = create_async_engine(url, **{**kwargs, "hide_parameters": True})
    if engine.dialect.name == "sqlite":
        _setup_sqlite(engine.sync_engine)
    return engine


def make_sqlite_writer_engine(engine: AsyncEngine) -> Engine:
    """A synchronous engine (stdlib ``sqlite3``) on the same file, for the writer's thread:
    a whole transaction then costs one hand-off between threads instead of several per
    statement. Its pool holds one connection, used by one thread at a time."""
    url = make_url(str(engine.url.render_as_string(hide_password=False)))
    sync = create_engine(
        url.set(drivername="sqlite+pysqlite"),
        hide_parameters=True,
        pool_size=1,
        max_overflow=0,
        connect_args={"check_same_thread": False},
    )
    _setup_sqlite(sync)
    return sync


def _setup_sqlite(sync_engine: Engine) -> None:

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get("begin", "BEGIN"))


# ---- logs -------------------------------------------------------------------------------

SQLALCHEMY_ENGINE_LOGGER = "sqlalchemy.engine.Engine"  # every engine's, unless named
AIOSQLITE_LOGGER = "aiosqlite"
_ROW_MESSAGES = frozenset({"Row %r"})
_CALL_MESSAGES = frozenset({"executing %s", "operation %s completed"})


class _NoRowValues(logging.Filter):
    """Drops SQLAlchemy's row lines; shortens aiosqlite's call lines to the call's name."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _ROW_MESSAGES:
            return False
        if record.msg in _CALL_MESSAGES and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = (_call_name(args[0]),)
        return True


def _call_name(call: object) -> str:
    while isinstance(call, functools.partial):
        call = call.func
    return str(getattr(call, "__qualname__", type(call).__name__))


_FILTER = _NoRowValues()


def quiet_row_values() -> None:
    """Install the filter on the SQLAlchemy engine and aiosqlite loggers (once)."""
    for name in (SQLALCHEMY_ENGINE_LOGGER, AIOSQLITE_LOGGER):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
