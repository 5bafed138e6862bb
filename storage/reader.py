"""The read path: one function of a read connection per hand-off, on either engine.

A read API request runs one function of a read connection (``storage.read_connection``)
and that function may issue several queries: the event loop pays one hand-off, not one
per query, and no ORM object is built (stored JSON is served as it is). Each ``run``
reads one snapshot, whichever the engine.

SQLite: plain ``sqlite3`` in a thread, one thread by default. Measured under mixed load
on 2 cores (``bench/soak.py``: reads at 32 connections plus 200 webhooks/s), four reader
threads acknowledged 119-132 webhooks/s and served 180 reads/s; one thread, 193
webhooks/s and 140 reads/s. Every query hands the GIL back and forth, and more threads
that want it starve the writer thread, which commits webhooks; reads are short, indexed
and served from memory (``mmap``), so a second thread buys them little.

PostgreSQL: **choice**, asyncpg through SQLAlchemy's pool, the driver the writer and
the migrations already use, so no second driver and no thread: a read waits on the
server without holding the event loop. The function runs through
``AsyncConnection.run_sync`` on ``PostgresReads`` (the same read functions, ``?``
rewritten to ``$n``), in one ``REPEATABLE READ`` transaction (one snapshot for all its
queries, as SQLite's ``BEGIN`` gives). The reader has a pool of its own, apart from the
writer's (reads never take the connections writes need): ``READ_POOL_SIZE``
connections, sessions read-only (``default_transaction_read_only``), every statement
cut short after ``READ_TIMEOUT_S`` by the server (``statement_timeout``) and by asyncpg
(``command_timeout``), a connection waited for at most ``READ_TIMEOUT_S``.
``blocking_reads`` gives the same connection to synchronous code (the inspection
commands).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.engine import make_engine
from storage.read_connection import PostgresReads, ReadConnection

T = TypeVar("T")

READ_PRAGMAS = (
    "PRAGMA query_only=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA mmap_size=268435456",
    "PRAGMA temp_store=MEMORY",
)
READ_POOL_SIZE = 8
READ_TIMEOUT_S = 10.0


class Reader:
    def __init__(self, engine: AsyncEngine, *, threads: int = 1) -> None:
        self._sqlite = engine.dialect.name == "sqlite"
        self._url = engine.url.render_as_string(hide_password=False)
        database = engine.url.database
        if self._sqlite and (not database or database == ":memory:"):
            raise ValueError("the read API needs a database file, not an in-memory database")
        self._path = database or ""
        self._threads = threads
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._engine: AsyncEngine | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """The SQLite database file (there is none on PostgreSQL: ValueError)."""
        if not self._sqlite:
            raise ValueError("the database is not an SQLite file")
        return self._path

    async def start(self) -> None:
        if self._sqlite:
            self._pool = concurrent.futures.ThreadPoolExecutor(self._threads, "storage-reader")
        else:
            self._engine = read_engine(self._url, READ_POOL_SIZE)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)`` in one read-only snapshot."""
        if self._engine is not None:
            async with self._engine.connect() as conn:  # rolled back on leaving
                return await conn.run_sync(_on_postgres, fn, args)
        if self._pool is None:
            raise RuntimeError("the reader is not started")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            for pragma in READ_PRAGMAS:
                conn.execute(pragma)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        conn.execute("BEGIN")  # one snapshot for all the queries of this read
        try:
            return fn(conn, *args)
        finally:
            conn.execute("COMMIT")


def _on_postgres(conn: Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    return fn(PostgresReads(conn.exec_driver_sql), *args)


def read_engine(url: str, pool_size: int) -> AsyncEngine:
    """A PostgreSQL engine for reads only: see the module docstring."""
    timeout_ms = str(int(READ_TIMEOUT_S * 1000))
    return make_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=READ_TIMEOUT_S,
        isolation_level="REPEATABLE READ",
        connect_args={
            "timeout": READ_TIMEOUT_S,
            "command_timeout": READ_TIMEOUT_S + 1,  # the server's own cut comes first
            "server_settings": {
                "default_transaction_read_only": "on",
                "statement_timeout": timeout_ms,
            },
        },
    )


@contextlib.contextmanager
def blocking_reads(url: str) -> Iterator[ReadConnection]:
    """A PostgreSQL read connection for synchronous code, in one read-only snapshot: an
    event loop in a thread of its own runs each statement (the caller blocks on it)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="storage-blocking-reads")
    thread.start()

    def wait(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    engine = read_engine(url, 1)
    try:
        conn = wait(engine.connect().start())
        try:
            yield PostgresReads(lambda sql, params: wait(conn.exec_driver_sql(sql, params)))
        finally:
            wait(conn.close())
    finally:
        try:
            wait(engine.dispose())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
