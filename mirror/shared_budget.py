"""``SharedRateBudget``: one Booxi budget for every process on one database.

Several ``serve`` replicas and the CLI commands run beside them (``sync``, ``audit``,
``resync``) use one partner key, so Booxi's 5 requests a second and 300 a minute hold
for all of them together. Each process keeps its ``RateBudget`` (priorities, shares,
its own windows: the first gate) and then claims a slot in the database's ledger
(``storage.budget_ledger``: the second gate) before the request goes:

- Within one process one grant at a time claims (``RateBudget._serial``), so the local
  queue stays the one place of order: priority, then arrival, and the fills' share
  while polls wait. When the ledger has no room, the grant is given back, the local
  budget grants nothing until the ledger's answer (when the oldest row of the full
  window leaves it, or a shared pause ends; at most ``MAX_NAP_S``), and the caller
  queues again at its place, so a write that arrived meanwhile goes first. Across
  processes there is no priority: the ledger serves whoever claims first once there is
  room.
- ``charge()`` (a 400) and ``pause()`` (a 429's ``Retry-After``) act on the local
  budget at once and are written to the ledger in the background, so every other
  process counts the extra weight and waits out the pause too.
- Windows are 1 s + ``margin_s`` and 60 s + ``margin_s``, on the database's clock on
  PostgreSQL. The default margin here is 0.25 s (five times the local one): a slot is
  claimed one database round trip and an event-loop turn before the request leaves,
  and on a loaded machine that delay varies by more than 0.1 s (a two-replica test saw
  a 429 once with 0.1 s). It costs a fifth of the budget at full load (5 requests per
  1.25 s) and nothing below it.

**choice**, a database error: the request fails with ``BudgetUnavailable`` (a
``BooxiUnavailable``: a write answers 503, a fill says Booxi is unreachable, a poll
records a failure and backs off, a GET is retried after backoff). Falling back to the
local budget would let N replicas send N times the budget while the database is down;
failing keeps the partner key within Booxi's limits, and a replica without its database
cannot store what Booxi answers anyway. Every ledger call has a timeout
(``LEDGER_TIMEOUT_S``) and is logged at WARNING when it fails (``booxi.budget.ledger``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from mirror.booxi_errors import BooxiUnavailable
from mirror.budget import Priority, RateBudget
from storage import budget_ledger

log = logging.getLogger(__name__)

LEDGER_TIMEOUT_S = 10.0
MAX_NAP_S = 1.0
SHARED_MARGIN_S = 0.25

T = TypeVar("T")


class BudgetUnavailable(BooxiUnavailable):
    """The shared rate budget (the database) could not be reached: no request went."""


class SharedRateBudget(RateBudget):
    """A ``RateBudget`` whose grants also claim a slot in the database's ledger."""

    def __init__(
        self,
        engine: AsyncEngine,
        per_second: float,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        margin_s: float = SHARED_MARGIN_S,
    ) -> None:
        super().__init__(per_second, per_minute, clock=clock, margin_s=margin_s)
        self.engine = engine
        self._serial = True  # one grant at a time claims in the ledger (RateBudget doc)
        self._background: set[asyncio.Task[None]] = set()
        self.shared_wait_s = 0.0
        self.ledger_errors = 0

    def __repr__(self) -> str:
        return "Shared" + super().__repr__()

    async def acquire(self, priority: Priority) -> float:
        """Wait for the local budget, then for a slot in the ledger; the seconds waited."""
        priority = Priority(priority)
        seq = next(self._seq)  # the place in the local queue, kept when queuing again
        waited = 0.0
        while True:
            local, grant = await self._acquire(priority, seq)  # the one claiming, now
            started = self._clock()
            try:
                wait = await self._claim()
            except BaseException:
                self._release_turn()
                raise
            shared = max(0.0, self._clock() - started)
            self.shared_wait_s += shared
            waited += local + shared
            if wait <= 0:
                self._release_turn()
                return waited
            # No room in the ledger: the local slot goes back, nothing here is granted
            # before the ledger has room, and this caller queues again at its place.
            self._give_back(grant)
            self._hold_until(self._clock() + min(wait, MAX_NAP_S))

    def charge(self, extra: int = 1) -> None:
        super().charge(extra)
        if extra:
            self._in_background(budget_ledger.record_charge(self.engine, extra), "charge")

    def pause_until(self, deadline: float) -> None:
        super().pause_until(deadline)
        seconds = deadline - self._clock()
        if seconds > 0:
            self._in_background(budget_ledger.record_pause(self.engine, seconds), "pause")

    async def close(self) -> None:
        """Wait for the charges and pauses still being written (each has its timeout)."""
        if self._background:
            await asyncio.wait(set(self._background))

    # ---- internals ---------------------------------------------------------------

    async def _claim(self) -> float:
        """One claim in the ledger: 0 if a slot was taken, else the seconds to wait."""
        return await self._ledger(
            budget_ledger.claim_slot(
                self.engine,
                short_limit=self._short_limit,
                short_window_s=self._short_window,
                long_limit=self._long_limit,
                long_window_s=self._long_window,
            ),
            "claim",
        )

    async def _ledger(self, call: Awaitable[T], what: str) -> T:
        try:
            async with asyncio.timeout(LEDGER_TIMEOUT_S):
                return await call
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            self.ledger_errors += 1
            log.warning(
                "booxi.budget.ledger %s failed: %s",
                what,
                type(exc).__name__,
                extra={"call": what, "error": type(exc).__name__},
            )
            raise BudgetUnavailable(
                f"the shared rate budget could not be reached ({type(exc).__name__})"
            ) from exc

    def _in_background(self, call: Awaitable[None], what: str) -> None:
        async def write() -> None:
            with contextlib.suppress(BudgetUnavailable):  # logged; held locally still
                await self._ledger(call, what)

        task = asyncio.get_running_loop().create_task(write())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
