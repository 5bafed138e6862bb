"""The single writer: every write of the process goes through one queue.

Jobs run in short transactions opened with ``BEGIN IMMEDIATE`` on SQLite. Whatever is
queued when a transaction starts goes into it (group commit): under load, many
webhook events share one commit, yet each caller resumes only after the commit that
made its job durable. Each job runs in a savepoint, so one failing job is rolled back
alone and its caller gets the exception. Jobs submitted with the same ``batch``
function are applied together in one call (set-based SQL), falling back to one call
per item when the batch fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[AsyncConnection], Awaitable[T]]
Batch = Callable[[AsyncConnection, Sequence[Any]], Awaitable[Sequence[Any]]]


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
        self._queue: asyncio.Queue[_Entry] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.commits = 0
        self.jobs = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="storage-writer")

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closed = True
        if self._task is not None:
            self._queue.put_nowait(_Entry(job=None, batch=None, item=None))
            await self._task
            self._task = None

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

    async def _submit(self, entry: _Entry) -> Any:
        if self._closed or self._task is None:
            raise WriterClosedError("the storage writer is not running")
        self._queue.put_nowait(entry)
        return await asyncio.shield(entry.future)

    async def _loop(self) -> None:
        stop = False
        while not stop:
            entries = [await self._queue.get()]
            while len(entries) < self._max_batch and not self._queue.empty():
                entries.append(self._queue.get_nowait())
            stop = any(e.job is None and e.batch is None for e in entries)
            work = [e for e in entries if e.job is not None or e.batch is not None]
            if work:
                await self._commit(work)

    async def _commit(self, entries: list[_Entry]) -> None:
        started = time.perf_counter()
        results: list[tuple[_Entry, bool, Any]] = []
        try:
            async with self._engine.connect() as conn:
                conn = await conn.execution_options(begin="BEGIN IMMEDIATE")
                async with conn.begin():
                    for group in _groups(entries):
                        results.extend(await self._apply(conn, group))
        except Exception as error:  # the commit itself failed: nobody's job is durable
            log.exception("storage.commit_failed", extra={"jobs": len(entries)})
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(error)
            return
        self.commits += 1
        self.jobs += len(entries)
        for entry, ok, value in results:
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

    async def _apply(
        self, conn: AsyncConnection, group: list[_Entry]
    ) -> list[tuple[_Entry, bool, Any]]:
        batch = group[0].batch
        if batch is not None and len(group) > 1:
            try:
                async with conn.begin_nested():
                    values = await batch(conn, [entry.item for entry in group])
                return [(entry, True, value) for entry, value in zip(group, values, strict=True)]
            except Exception:  # retried one by one below, to isolate the culprit
                log.warning("storage.batch_failed", extra={"items": len(group)}, exc_info=True)
        done = []
        for entry in group:
            try:
                async with conn.begin_nested():
                    if entry.batch is not None:
                        value = (await entry.batch(conn, [entry.item]))[0]
                    else:
                        assert entry.job is not None
                        value = await entry.job(conn)
                done.append((entry, True, value))
            except Exception as error:  # handed to the caller
                done.append((entry, False, error))
        return done


def _groups(entries: list[_Entry]) -> list[list[_Entry]]:
    """Consecutive entries of one batch function together; single jobs alone."""
    groups: list[list[_Entry]] = []
    for entry in entries:
        if groups and entry.batch is not None and groups[-1][0].batch is entry.batch:
            groups[-1].append(entry)
        else:
            groups.append([entry])
    return groups
