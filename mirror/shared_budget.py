"""``SharedRateBudget``: one Booxi budget for every process on one database.

Several ``serve`` replicas and the CLI commands run beside them (``sync``, ``audit``,
``resync``) use one partner key, so Booxi's 5 requests a second and 300 a minute hold
for all of them together. Each process keeps its ``RateBudget`` (priorities, shares,
its own windows: the first gate) and then claims a slot in the database's ledger
(``storage.budget_ledger``: the second gate) before the request goes:

- Claims within one process go one at a time, by priority then arrival (a write that
  arrives while a poll waits for the ledger goes first); the one claiming waits the
  seconds the ledger answers (until the oldest row of the full window leaves it, or a
  shared pause ends, at most ``MAX_NAP_S`` at a time) and claims again. Across
  processes there is no priority: the ledger serves whoever claims first once there is
  room.
- ``charge()`` (a 400) and ``pause()`` (a 429's ``Retry-After``) act on the local
  budget at once and are written to the ledger in the background, so every other
  process counts the extra weight and waits out the pause too.
- Windows are 1 s + ``margin_s`` and 60 s + ``margin_s``, on the database's clock on
  PostgreSQL. The default margin here is 0.1 s (twice the local one): a slot is claimed
  one database round trip before the request leaves, and that trip's length varies.

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
import heapq
import itertools
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
SHARED_MARGIN_S = 0.1

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
        self._claimers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._claiming = False
        self._claim_seq = itertools.count()
        self._background: set[asyncio.Task[None]] = set()
        self.shared_wait_s = 0.0
        self.ledger_errors = 0

    def __repr__(self) -> str:
        return "Shared" + super().__repr__()

    async def acquire(self, priority: Priority) -> float:
        """Wait for the local budget, then for a slot in the ledger; the seconds waited."""
        waited = await super().acquire(priority)
        started = time.monotonic()
        place = (int(priority), next(self._claim_seq))
        await self._take_turn(place)
        holding = True
        try:
            while (wait := await self._claim()) > 0:
                await asyncio.sleep(min(wait, MAX_NAP_S))
                if self._claimers and self._claimers[0][:2] < place:
                    holding = False
                    self._pass_turn()  # a higher priority arrived while we napped
                    await self._take_turn(place)
                    holding = True
        finally:
            if holding:
                self._pass_turn()
        shared = time.monotonic() - started
        self.shared_wait_s += shared
        return waited + shared

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

    async def _take_turn(self, place: tuple[int, int]) -> None:
        """Wait until this caller is the one claiming (``place``: priority, arrival).

        Cancelled while waiting, the caller holds no turn (one handed to it just then is
        handed on); the caller that holds the turn passes it on with ``_pass_turn()``.
        """
        if not self._claiming:
            self._claiming = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._claimers, (*place, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._pass_turn()
            raise

    def _pass_turn(self) -> None:
        while self._claimers:
            _, _, future = heapq.heappop(self._claimers)
            if not future.done():
                future.set_result(None)
                return
        self._claiming = False
