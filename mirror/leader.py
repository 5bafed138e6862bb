"""``PollLeadership``: which ``serve`` replica polls Booxi. Exactly one at a time.

Every replica answers reads, webhooks and writes; only the leader runs the poller
(calendar polls, reference refresh, retention: ``mirror.scheduler.Poller``).

- PostgreSQL: the leader holds a session-level advisory lock
  (``pg_try_advisory_lock(POLL_LOCK_KEY)``) on a connection of its own, checked out of
  the engine's pool for as long as it leads (autocommit, so no transaction stays open).
  The others try for the lock every ``try_every_s``. A leader that dies (even by
  SIGKILL) loses its connection, PostgreSQL frees the lock, and the next try of another
  replica takes it: takeover within one try period of PostgreSQL noticing the closed
  socket (at once for a killed process; a network cut waits for TCP keepalive).
- Each try period the leader runs ``SELECT 1`` on its lock connection (timeout
  ``check_timeout_s``); if that fails, the lock may be gone: it stops polling at once
  (``poll.leader.lost``), drops the connection and tries again like the others. Between
  a lost connection and the leader's next check the two may overlap by at most one try
  period; each poll's transactions are whole, and the shared budget holds regardless.
- ``try_every_s`` defaults to ``try_period(calendar_interval_s)``: a quarter of the
  calendar interval, at most ``MAX_TRY_S``, at least ``MIN_TRY_S``, so a dead leader is
  replaced well within two poll intervals.
- SQLite (**choice**): ``serve`` on SQLite is one process, so it always polls; no lock is
  taken. Two ``serve`` processes on one SQLite file are not supported (both would poll).

Log lines: ``poll.leader.acquired``, ``poll.leader.lost`` (with the reason),
``poll.leader.released`` (at shutdown). ``is_leader`` feeds the
``booxi_mirror_poll_leader`` gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# ``pg_try_advisory_lock`` key: "booxiPL" in ASCII, an arbitrary constant of our own
# (``storage.budget_ledger`` uses another).
POLL_LOCK_KEY = 0x626F6F7869504C
MIN_TRY_S = 0.5
MAX_TRY_S = 5.0


def try_period(calendar_interval_s: float) -> float:
    """How often a follower tries for the lock and the leader checks its connection."""
    return min(MAX_TRY_S, max(MIN_TRY_S, calendar_interval_s / 4))


class PollLeadership:
    """Runs ``on_acquired()`` when this replica becomes the poller, ``on_lost()`` when it
    stops being it (or at ``close()``)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        on_acquired: Callable[[], None],
        on_lost: Callable[[], Awaitable[None]],
        try_every_s: float = MAX_TRY_S,
        check_timeout_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.try_every_s = try_every_s
        self.check_timeout_s = check_timeout_s or max(1.0, try_every_s)
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._conn: AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self.is_leader = False

    async def start(self) -> None:
        """On SQLite: lead at once. On PostgreSQL: try now, then every ``try_every_s``."""
        if self.engine.dialect.name == "sqlite":
            self._become_leader("sqlite")
            return
        await self._try_once()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop trying; stop polling if leading; release the lock (its connection goes)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.is_leader:
            await self._step_down()
            log.info("poll.leader.released")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.try_every_s)
            try:
                await self._try_once()
            except Exception:  # keep trying: a replica that stops trying never polls again
                log.exception("poll.leader.error")

    async def _try_once(self) -> None:
        if self.is_leader:
            if not await self._still_holding():
                await self._step_down()
                log.warning(
                    "poll.leader.lost",
                    extra={"reason": "the lock connection failed: polling stopped"},
                )
            return
        try:
            async with asyncio.timeout(self.check_timeout_s):
                conn = await self.engine.connect()
                try:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    got = (
                        await conn.execute(select(func.pg_try_advisory_lock(POLL_LOCK_KEY)))
                    ).scalar_one()
                except BaseException:
                    await _drop(conn)
                    raise
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning(
                "poll.leader.try failed: %s",
                type(exc).__name__,
                extra={"error": type(exc).__name__},
            )
            return
        if not got:
            await conn.close()  # holds nothing: back to the pool
            return
        self._conn = conn
        try:
            self._become_leader("postgresql")
        except Exception:  # a leader that cannot poll must not keep the others from it
            await self._step_down()
            raise

    async def _still_holding(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            async with asyncio.timeout(self.check_timeout_s):
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError):
            return False
        return True

    def _become_leader(self, how: str) -> None:
        self.is_leader = True
        log.info("poll.leader.acquired", extra={"engine": how})
        self._on_acquired()

    async def _step_down(self) -> None:
        self.is_leader = False
        try:
            await self._on_lost()
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                await _drop(conn)


async def _drop(conn: AsyncConnection) -> None:
    """Close ``conn`` and its database session (never back to the pool: a pooled
    connection must not carry the lock)."""
    with contextlib.suppress(SQLAlchemyError, OSError, TimeoutError):
        async with asyncio.timeout(5):
            await conn.invalidate()
    with contextlib.suppress(SQLAlchemyError, OSError, TimeoutError):
        await conn.close()
