"""One shared rate budget per process, so all upstream traffic stays inside Booxi's fair use.

(``mirror.shared_budget.SharedRateBudget`` extends it to every process on one database:
``serve`` replicas and the CLI commands beside them. This module is the local gate.)

Booxi allows 5 requests a second and 300 a minute per key; over that it answers 429, and
an answer of 400 counts double. Every call the mirror makes (writes, first-demand fills,
polls) first waits for ``RateBudget.acquire(priority)``, which admits it only when no
rolling window would be exceeded, and hands out slots by priority, then arrival:

- ``Priority.WRITE`` (0) before ``Priority.FILL`` (1) before ``Priority.POLL`` (2).
  A write that arrives while polls queue goes next.
- Windows are 1 s + ``margin_s`` and 60 s + ``margin_s`` long: requests sent that far
  apart cannot look closer to Booxi unless the network delays them by more than the
  margin.
- ``charge()`` counts extra weight (a 400 answer), ``pause()`` / ``pause_until()`` stop
  every grant until a deadline (after a 429 with ``Retry-After``).
- ``limit_share(priority, share)`` caps what one priority may take while anything of a
  lower priority waits. The rule: while at least one waiter of a lower priority (a larger
  number) is queued, a grant at ``priority`` is admitted only if that priority's own
  requests in each window stay under ``share`` of the window's limit (rounded down, at
  least 1); a capped waiter stands aside and the next waiter in order (priority, then
  arrival) that may go goes instead. With nothing of lower priority waiting, there is no
  cap: an idle budget is not wasted. The runtime sets ``limit_share(Priority.FILL, 0.5)``:
  a poll waiting for the budget is a staff calendar falling behind its interval, and then
  first-demand fills get at most half of every window, so polling is never starved.
  Extra weight from ``charge()`` counts against the windows, not against any share.

A fractional ``per_second`` is rounded down to whole requests per 1 s window (2.5 allows
2); below 1 it becomes one request per ``1 / per_second`` seconds.

Waiters sit in a heap of ``(priority, arrival, future)``; one timer, set for the moment
the first of them may go, grants them. Nothing polls. A waiter cancelled while queued
leaves the heap; one cancelled after its grant but before it ran gives its slot back.

For a second gate after this one (``mirror.shared_budget``), a subclass may set
``_serial``: then one grant at a time is outstanding until ``_release_turn()``, and
``_hold_until()`` keeps every grant back until a deadline (not counted as a pause);
``_acquire(priority, seq)`` queues again at an earlier place.
"""

import asyncio
import dataclasses
import heapq
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum

log = logging.getLogger(__name__)

MINUTE_S = 60.0


class Priority(IntEnum):
    """Who goes first when the budget is short: lower values are served first."""

    WRITE = 0
    FILL = 1
    POLL = 2


@dataclasses.dataclass(frozen=True)
class BudgetStats:
    """A snapshot of what the budget has done since it was made (for metrics)."""

    granted: int
    wait_s: float
    granted_by_priority: dict[str, int]
    wait_s_by_priority: dict[str, float]
    waited_by_priority: dict[str, int]  # grants that had to wait at all
    charged: int  # extra weight recorded by charge()
    pauses: int
    queued: int  # waiters right now


@dataclasses.dataclass(frozen=True)
class _Hit:
    """A request (or extra weight) counted against the windows; ``priority`` None for
    ``charge()``."""

    at: float
    weight: int
    priority: Priority | None


@dataclasses.dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: "asyncio.Future[None]" = dataclasses.field(compare=False)
    granted_at: float | None = dataclasses.field(default=None, compare=False)


class RateBudget:
    """Admits requests within ``per_second`` and ``per_minute``, by priority then arrival."""

    def __init__(
        self,
        per_second: float,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        margin_s: float = 0.05,
    ) -> None:
        if not per_second > 0 or math.isinf(per_second):
            raise ValueError(f"per_second must be a positive number, got {per_second!r}")
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute!r}")
        if margin_s < 0:
            raise ValueError(f"margin_s must not be negative, got {margin_s!r}")
        if per_second >= 1:
            self._short_limit, short_window = math.floor(per_second), 1.0
        else:
            self._short_limit, short_window = 1, 1.0 / per_second
        self._short_window = short_window + margin_s
        self._long_limit = per_minute
        self._long_window = MINUTE_S + margin_s
        self._clock = clock
        self._hits: deque[_Hit] = deque()  # oldest first
        self._shares: dict[Priority, float] = {}
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._paused_until = -math.inf
        self._held_until = -math.inf  # _hold_until(): a second gate has no room yet
        self._serial = False  # a subclass sets it: one grant outstanding at a time
        self._turn_taken = False
        self._timer: asyncio.TimerHandle | None = None
        self._granted = 0
        self._wait_s = 0.0
        self._granted_by: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self._waited_by: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self._wait_s_by: dict[Priority, float] = dict.fromkeys(Priority, 0.0)
        self._charged = 0
        self._pauses = 0

    def __repr__(self) -> str:
        return (
            f"RateBudget({self._short_limit} per {self._short_window:g}s, "
            f"{self._long_limit} per {self._long_window:g}s, queued={len(self._waiters)})"
        )

    async def acquire(self, priority: Priority) -> float:
        """Wait until one request may start now; the seconds waited.

        Cancelling the caller while it waits removes it from the queue; a slot granted to
        a caller cancelled before it could use it is returned.
        """
        waited, _ = await self._acquire(Priority(priority), next(self._seq))
        return waited

    async def _acquire(self, priority: Priority, seq: int) -> tuple[float, _Waiter]:
        """``acquire()`` at the place ``(priority, seq)``; the seconds waited and the grant."""
        arrived = self._clock()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(priority, seq, future)
        heapq.heappush(self._waiters, waiter)
        self._dispatch()
        if future.done():  # granted at once: nobody ahead, room in every window
            return 0.0, waiter
        try:
            await future
        except asyncio.CancelledError:
            if waiter.granted_at is not None:
                self._give_back(waiter)
            self._dispatch()
            raise
        waited = max(0.0, self._clock() - arrived)
        self._wait_s += waited
        self._wait_s_by[priority] += waited
        self._waited_by[priority] += 1
        return waited, waiter

    def _release_turn(self) -> None:
        """With ``_serial``: the outstanding grant is done with; the next may go."""
        self._turn_taken = False
        self._dispatch()

    def _hold_until(self, deadline: float) -> None:
        """Grant nothing before ``deadline`` (a second gate's wait; no pause counted)."""
        self._held_until = max(self._held_until, deadline)
        self._dispatch()

    def limit_share(self, priority: Priority, share: float | None) -> None:
        """Cap ``priority`` at ``share`` (0 < share <= 1) of each window while anything of a
        lower priority waits (the module doc has the rule); None removes the cap."""
        priority = Priority(priority)
        if share is None:
            self._shares.pop(priority, None)
        elif not 0 < share <= 1:
            raise ValueError(f"share must be more than 0 and at most 1, got {share!r}")
        else:
            self._shares[priority] = share
        self._dispatch()

    def charge(self, extra: int = 1) -> None:
        """Count ``extra`` more requests now (Booxi counts a 400 answer twice)."""
        if extra < 0:
            raise ValueError(f"extra must not be negative, got {extra!r}")
        if extra:
            self._hits.append(_Hit(self._clock(), extra, None))
            self._charged += extra
            self._dispatch()

    def pause_until(self, deadline: float) -> None:
        """Grant nothing before ``deadline`` (on this budget's clock); never shortens a pause."""
        if deadline > self._paused_until:
            self._paused_until = deadline
            self._pauses += 1
            log.info(
                "booxi.budget.paused for %.2fs",
                max(0.0, deadline - self._clock()),
                extra={"pause_s": round(max(0.0, deadline - self._clock()), 3)},
            )
        self._dispatch()

    def pause(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` from now (after a 429)."""
        self.pause_until(self._clock() + max(0.0, seconds))

    def delay(self) -> float:
        """Seconds from now until one more request could start (0 if it could now)."""
        return self._delay(self._clock())

    @property
    def stats(self) -> BudgetStats:
        return BudgetStats(
            granted=self._granted,
            wait_s=self._wait_s,
            granted_by_priority={p.name: n for p, n in self._granted_by.items()},
            wait_s_by_priority={p.name: s for p, s in self._wait_s_by.items()},
            waited_by_priority={p.name: n for p, n in self._waited_by.items()},
            charged=self._charged,
            pauses=self._pauses,
            queued=sum(1 for w in self._waiters if not w.future.done()),
        )

    # ---- internals ---------------------------------------------------------------

    def _delay(self, now: float) -> float:
        """Seconds from ``now`` until a request fits both windows and any pause is over."""
        while self._hits and self._hits[0].at <= now - self._long_window:
            self._hits.popleft()
        wait = max(0.0, self._paused_until - now, self._held_until - now)
        for window, limit in self._windows():
            wait = max(wait, self._room_in(window, limit, now, None))
        return wait

    def _windows(self) -> tuple[tuple[float, int], tuple[float, int]]:
        return (
            (self._short_window, self._short_limit),
            (self._long_window, self._long_limit),
        )

    def _room_in(self, window: float, limit: int, now: float, only: Priority | None) -> float:
        """Seconds until one more request fits ``limit`` in ``window``, counting every hit
        (``only`` None) or the hits of priority ``only``."""
        inside = [
            hit
            for hit in self._hits
            if hit.at > now - window and (only is None or hit.priority == only)
        ]
        used = sum(hit.weight for hit in inside)
        wait = 0.0
        for hit in inside:  # drop the oldest until one more fits
            if used < limit:
                break
            used -= hit.weight
            wait = max(wait, hit.at + window - now)
        return wait

    def _share_delay(self, priority: Priority, now: float) -> float:
        """Seconds until ``priority`` may go under its share cap (0: no cap applies now)."""
        share = self._shares.get(priority)
        if share is None or not any(
            w.priority > priority and not w.future.done() for w in self._waiters
        ):
            return 0.0
        return max(
            self._room_in(window, max(1, math.floor(share * limit)), now, priority)
            for window, limit in self._windows()
        )

    def _next_to_go(self, now: float) -> tuple[_Waiter | None, float]:
        """The first waiter, in order, that its share lets go now; else None and the
        seconds until one could."""
        head = self._waiters[0]
        wait = self._share_delay(Priority(head.priority), now)
        if wait == 0:
            return head, 0.0
        for waiter in sorted(self._waiters)[1:]:
            if waiter.future.done():
                continue
            capped = self._share_delay(Priority(waiter.priority), now)
            if capped == 0:
                return waiter, 0.0
            wait = min(wait, capped)
        return None, wait

    def _dispatch(self) -> None:
        """Grant every waiter that may go now, in order; set the timer for the next one."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiters and not self._turn_taken:
            head = self._waiters[0]
            loop = head.future.get_loop()
            if head.future.done() or loop.is_closed():  # cancelled, or its loop is gone
                heapq.heappop(self._waiters)
                continue
            now = self._clock()
            wait = self._delay(now)
            chosen: _Waiter | None = None
            if wait == 0:
                chosen, wait = self._next_to_go(now)
            if chosen is None:
                self._timer = loop.call_later(wait, self._dispatch)
                return
            if chosen is head:
                heapq.heappop(self._waiters)
            else:
                self._waiters.remove(chosen)
                heapq.heapify(self._waiters)
            priority = Priority(chosen.priority)
            self._hits.append(_Hit(now, 1, priority))
            chosen.granted_at = now
            self._turn_taken = self._serial
            self._granted += 1
            self._granted_by[priority] += 1
            chosen.future.set_result(None)

    def _give_back(self, waiter: _Waiter) -> None:
        """Return the slot of a waiter cancelled after its grant, before it could use it."""
        assert waiter.granted_at is not None
        entry = _Hit(waiter.granted_at, 1, Priority(waiter.priority))
        for index in range(len(self._hits) - 1, -1, -1):
            if self._hits[index] == entry:
                del self._hits[index]
                break
        self._granted -= 1
        self._granted_by[Priority(waiter.priority)] -= 1
        self._turn_taken = False
