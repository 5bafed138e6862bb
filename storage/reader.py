"""The lean read path: plain ``sqlite3`` in a few threads, one hand-off per request.

A read API request runs one function of a read-only connection in a pool thread, and
that function may issue several queries: the event loop pays one hand-off, not one per
query, and no ORM object is built (stored JSON is served as it is). SQLite only for
now; the read functions keep to portable SQL with ``?`` parameters.

One thread by default. Measured under mixed load on 2 cores (``bench/soak.py``: reads
at 32 connections plus 200 webhooks/s), four reader threads acknowledged 119-132
webhooks/s and served 180 reads/s; one thread, 193 webhooks/s and 140 reads/s. Every
query hands the GIL back and forth, and more threads that want it starve the writer
thread, which commits webhooks; reads are short, indexed and served from memory
(``mmap``), so a second thread buys them little.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")

READ_PRAGMAS = (
    "PRAGMA query_only=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA mmap_size=268435456",
    "PRAGMA temp_store=MEMORY",
)


class Reader:
    def __init__(self, engine: AsyncEngine, *, threads: int = 1) -> None:
        if engine.dialect.name != "sqlite":
            raise NotImplementedError("the read API serves from SQLite for now")
        database = engine.url.database
        if not database or database == ":memory:":
            raise ValueError("the read API needs a database file, not an in-memory database")
        self._path = database
        self._threads = threads
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    async def start(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(self._threads, "storage-reader")

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)`` in a reader thread."""
        if self._pool is None:
            raise RuntimeError("the reader is not started")
        import os

        if os.environ.get("INLINE_READS"):
            return self._call(fn, args)
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
