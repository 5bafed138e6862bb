"""The single writer: every write of the process goes through one queue.

Jobs are plain (synchronous) functions of a SQLAlchemy ``Connection``, run in short
transactions opened with ``BEGIN IMMEDIATE`` on SQLite. Whatever is queued when a
transaction starts goes into it (group commit): under load many webhook events share
one commit, yet each caller resumes only once the commit that made its job durable is
done. Jobs submitted with the same ``batch`` function are applied in one call
(set-based SQL). If anything fails, the transaction is rolled back and every job is
run again alone in a savepoint, so one bad job fails alone and its caller gets the
exception.

After each commit, and before any of its callers resume, the listeners added with
``after_commit`` learn of it: ``collect(connection)`` runs in the writer's thread (a
read, after the commit), then ``deliver(value)`` in the event loop (``None`` if collect
failed). The read API's ready answers drop what a write changed this way
(``api.ready``), so nobody reads the answer to a write and then an older copy.

On SQLite the whole transaction runs in the writer's own thread on a stdlib
``sqlite3`` connection (one hand-off per transaction: SQLAlchemy's async path over
aiosqlite costs several per statement); on other databases it runs through
``AsyncConnection.run_sync``. On PostgreSQL, where other transactions commit alongside,
a transaction that has listeners reads the change rows it wrote just before it commits
(``storage.changes.note_transaction``): ``collect`` gets what that transaction changed,
not what others did meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import changes
from storage.engine import make_sqlite_writer_engine

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[Connection], T]
Batch = Callable[[Connection, Sequence[Any]], Sequence[Any]]


@dataclass
class _Entry:
    job: Job[Any] | None
    batch: Batch | None
    item: Any
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class WriterClosedError(RuntimeError):
    """The writer was closed; nothing more is written."""


class Writer:
    def __init__(self, engine: AsyncEngine, *, max_batch: int = 500) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Entry | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._sync: Engine | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self.commits = 0
        self.jobs = 0
        self._listeners: list[tuple[Callable[[Connection], Any], Callable[[Any], None]]] = []

    def after_commit(
        self, collect: Callable[[Connection], Any], deliver: Callable[[Any], None]
    ) -> Callable[[], None]:
        """Call ``collect`` after every commit (writer thread), then ``deliver`` with its
        value (event loop, before the commit's callers resume). Returns what removes the
        listener."""
        listener = (collect, deliver)
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def start(self) -> None:
        if self._engine.dialect.name == "sqlite":
            self._sync = make_sqlite_writer_engine(self._engine)
            self._thread = concurrent.futures.ThreadPoolExecutor(1, "storage-writer")
        self._task = asyncio.create_task(self._loop(), name="storage-writer")

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        task, self._task = self._task, None
        if task is not None:
            self._queue.put_nowait(None)
            await task
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._sync is not None:
            self._sync.dispose()
            self._sync = None

    async def __aenter__(self) -> Writer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def run(self, job: Job[T]) -> T:
        """Run ``job(connection)`` in the next transaction; its result once committed."""
        result: T = await self._submit(_Entry(job=job, batch=None, item=None))
        return result

    async def run_batched(self, batch: Batch, item: Any) -> Any:
        """Apply ``item`` with ``batch(connection, items)`` alongside others queued."""
        return await self._submit(_Entry(job=None, batch=batch, item=item))

    async def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file and empty it (SQLite), so
        that what was overwritten (erased personal data) lingers in no file."""
        if self._sync is None or self._task is None:
            return
        sync = self._sync

        def run() -> None:
            raw = sync.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                cursor.close()
            finally:
                raw.close()

        await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def _submit(self, entry: _Entry) -> Any:
        if self._task is None:
            raise WriterClosedError("the storage writer is not running")
        self._queue.put_nowait(entry)
        return await asyncio.shield(entry.future)

    async def _loop(self) -> None:
        while True:
            first = await self._queue.get()
            entries = [] if first is None else [first]
            stop = first is None
            while len(entries) < self._max_batch and not self._queue.empty():
                entry = self._queue.get_nowait()
                if entry is None:
                    stop = True
                else:
                    entries.append(entry)
            if entries:
                await self._commit(entries)
            if stop:
                return

    async def _commit(self, entries: list[_Entry]) -> None:
        started = time.perf_counter()
        try:
            if self._sync is not None:
                loop = asyncio.get_running_loop()
                results, collected = await loop.run_in_executor(
                    self._thread, self._transaction, entries
                )
            else:
                async with self._engine.connect() as conn:
                    results, collected = await conn.run_sync(self._batch, entries)
        except Exception as error:  # the commit itself failed: nobody's job is durable
            log.exception("storage.commit_failed", extra={"jobs": len(entries)})
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(error)
            return
        self.commits += 1
        self.jobs += len(entries)
        for deliver, value in collected:
            try:
                deliver(value)
            except Exception:  # a listener's fault is not the writes'
                log.exception("storage.after_commit_failed")
        for entry, (ok, value) in zip(entries, results, strict=True):
            if entry.future.done():
                continue
            if ok:
                entry.future.set_result(value)
            else:
                entry.future.set_exception(value)
        log.debug(
            "storage.commit",
            extra={
                "jobs": len(entries),
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )

    def _transaction(
        self, entries: list[_Entry]
    ) -> tuple[list[tuple[bool, Any]], list[tuple[Callable[[Any], None], Any]]]:
        assert self._sync is not None
        with self._sync.connect() as conn:
            return self._batch(conn, entries)

    def _batch(
        self, conn: Connection, entries: list[_Entry]
    ) -> tuple[list[tuple[bool, Any]], list[tuple[Callable[[Any], None], Any]]]:
        """The jobs' results, then what each listener collects after the commit."""
        results = self._in_transaction(conn, entries)
        collected: list[tuple[Callable[[Any], None], Any]] = []
        for collect, deliver in list(self._listeners):
            try:
                collected.append((deliver, collect(conn)))
            except Exception:
                log.warning("storage.after_commit_collect_failed", exc_info=True)
                collected.append((deliver, None))
            finally:
                if conn.in_transaction():
                    conn.rollback()
        return results, collected

    def _in_transaction(self, conn: Connection, entries: list[_Entry]) -> list[tuple[bool, Any]]:
        conn = conn.execution_options(begin="BEGIN IMMEDIATE")
        try:
            with conn.begin():
                values = _apply_all(conn, entries)
                self._before_commit(conn)
                return [(True, value) for value in values]
        except Exception:  # find the culprit: each job again, alone, in a savepoint
            log.warning("storage.retrying_one_by_one", extra={"jobs": len(entries)}, exc_info=True)
        results: list[tuple[bool, Any]] = []
        with conn.begin():
            for entry in entries:
                try:
                    with conn.begin_nested():
                        results.append((True, _apply_one(conn, entry)))
                except Exception as error:  # handed to the caller
                    results.append((False, error))
            self._before_commit(conn)
        return results

    def _before_commit(self, conn: Connection) -> None:
        """PostgreSQL, with listeners: note the transaction's change rows, so that they
        get exactly its changes after the commit (``storage.changes.transaction_changes``)."""
        if self._listeners and conn.dialect.name == "postgresql":
            changes.note_transaction(conn)


def _apply_all(conn: Connection, entries: list[_Entry]) -> list[Any]:
    """Every job's result, consecutive entries of one batch function applied together."""
    values: list[Any] = []
    index = 0
    while index < len(entries):
        batch = entries[index].batch
        end = index + 1
        if batch is not None:
            while end < len(entries) and entries[end].batch is batch:
                end += 1
            values.extend(batch(conn, [e.item for e in entries[index:end]]))
        else:
            values.append(_apply_one(conn, entries[index]))
        index = end
    return values


def _apply_one(conn: Connection, entry: _Entry) -> Any:
    if entry.batch is not None:
        return entry.batch(conn, [entry.item])[0]
    assert entry.job is not None
    return entry.job(conn)
