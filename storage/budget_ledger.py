"""The rate budget's ledger in the database: what every process on it has sent to Booxi.

One short transaction per call, each serialized against the others:

- PostgreSQL: ``pg_advisory_xact_lock(LEDGER_LOCK_KEY)`` first (held to the commit), and
  the time is the database's ``clock_timestamp()`` read after the lock, so replicas on
  machines whose clocks disagree still count the same windows. ``lock_timeout`` and
  ``statement_timeout`` bound every wait inside the transaction.
- SQLite: ``BEGIN IMMEDIATE`` (the busy timeout of ``storage.engine`` bounds the wait)
  and the process's wall clock (``time.time()``): every process is on one machine.

``claim_slot()`` counts the weight in the last ``short_window_s`` and ``long_window_s``
(the windows already include the margin) and inserts a ``request`` row if both have
room, answering 0; otherwise it inserts nothing and answers the seconds until the oldest
row of the full window leaves it (or until a pause ends). ``record_charge()`` and
``record_pause()`` write the extra weight of a 400 and the end of a 429's pause, which
every ``claim_slot()`` honours. Rows older than ``PRUNE_AFTER_S`` go at each claim.
The waiting is ``mirror.shared_budget``'s; this module knows no Booxi.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from sqlalchemy import case, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.models import BudgetEntry, table_of

# ``pg_advisory_xact_lock`` key: "booxiRL" in ASCII, an arbitrary constant of our own.
LEDGER_LOCK_KEY = 0x626F6F7869524C
PRUNE_AFTER_S = 120.0
LOCK_TIMEOUT_MS = 2000
STATEMENT_TIMEOUT_MS = 5000

_TABLE = table_of(BudgetEntry)
_entry = _TABLE.c


async def claim_slot(
    engine: AsyncEngine,
    *,
    short_limit: int,
    short_window_s: float,
    long_limit: int,
    long_window_s: float,
) -> float:
    """Take one request's slot now (0.0), or the seconds to wait before trying again."""
    async with _transaction(engine) as conn:
        now = await _now(conn)
        await conn.execute(delete(_TABLE).where(_entry.at_s < now - PRUNE_AFTER_S))
        paused_until = (
            await conn.execute(select(func.max(_entry.at_s)).where(_entry.kind == "pause"))
        ).scalar_one()
        if paused_until is not None and paused_until > now:
            return float(paused_until - now)
        short_from, long_from = now - short_window_s, now - long_window_s
        in_short = _entry.at_s > short_from
        row = (
            await conn.execute(
                select(
                    func.coalesce(func.sum(case((in_short, _entry.weight), else_=0)), 0),
                    func.min(case((in_short, _entry.at_s), else_=None)),
                    func.coalesce(func.sum(_entry.weight), 0),
                    func.min(_entry.at_s),
                ).where(_entry.kind != "pause", _entry.at_s > long_from)
            )
        ).one()
        short_used, short_oldest, long_used, long_oldest = row
        wait = 0.0
        if short_used >= short_limit:
            wait = max(wait, short_oldest + short_window_s - now)
        if long_used >= long_limit:
            wait = max(wait, long_oldest + long_window_s - now)
        if wait > 0:
            return float(wait)
        await conn.execute(insert(_TABLE).values(kind="request", at_s=now, weight=1))
        return 0.0


async def record_charge(engine: AsyncEngine, weight: int) -> None:
    """Count ``weight`` more against the windows, now."""
    async with _transaction(engine) as conn:
        now = await _now(conn)
        await conn.execute(insert(_TABLE).values(kind="charge", at_s=now, weight=weight))


async def record_pause(engine: AsyncEngine, seconds: float) -> None:
    """No slot for anyone before ``seconds`` from now (a longer pause already set stays)."""
    async with _transaction(engine) as conn:
        now = await _now(conn)
        await conn.execute(insert(_TABLE).values(kind="pause", at_s=now + seconds, weight=0))


async def used(engine: AsyncEngine, window_s: float) -> int:
    """The weight counted in the last ``window_s`` seconds (for tests and diagnostics)."""
    async with _transaction(engine) as conn:
        now = await _now(conn)
        total = (
            await conn.execute(
                select(func.coalesce(func.sum(_entry.weight), 0)).where(
                    _entry.kind != "pause", _entry.at_s > now - window_s
                )
            )
        ).scalar_one()
        return int(total)


@contextlib.asynccontextmanager
async def _transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One serialized transaction (module doc), committed at the end, rolled back on an
    error."""
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn = await conn.execution_options(begin="BEGIN IMMEDIATE")
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                await conn.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
                await conn.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
                await conn.execute(select(func.pg_advisory_xact_lock(LEDGER_LOCK_KEY)))
            yield conn


async def _now(conn: AsyncConnection) -> float:
    if conn.dialect.name == "postgresql":
        return float(
            (await conn.execute(select(func.extract("epoch", func.clock_timestamp())))).scalar_one()
        )
    return time.time()
