"""``make_engine(url)``: the async engine, with SQLite set up for a long-running service.

SQLite: WAL (readers never block the writer), ``synchronous=NORMAL`` (a commit survives
a killed process; only a power cut can lose the last ones), secure delete (what is
deleted or overwritten is zeroed in the file), a 5 s busy timeout for a
second process (the CLI) touching the file, foreign keys on, and transactions that a
writer may open with ``BEGIN IMMEDIATE`` (``execution_options(begin="BEGIN IMMEDIATE")``)
so that two writers queue instead of failing on a lock upgrade.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",  # erased personal data is zeroed, not left in free space
    "PRAGMA temp_store=MEMORY",
    "PRAGMA mmap_size=268435456",
)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """``hide_parameters``: an error's text never carries row values (clients' data)."""
    engine = create_async_engine(url, hide_parameters=True, **kwargs)
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


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
