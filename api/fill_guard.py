"""What keeps first-demand fills from being abused: each one is a call to Booxi, paid
from the one rate budget that polling needs too (``mirror.budget``).

``FillGuard`` (one per application, ``app[FILL_GUARD]``, consulted by ``api.upstream.fill``):

- **Booxi's 404s are remembered** for ``NOT_FOUND_TTL_S`` (10 minutes), per caller and
  fill scope, in a bounded LRU (``NOT_FOUND_MAX`` entries): the same caller asking again
  for the same missing id is answered 404 without calling Booxi. **choice**: per caller,
  so that one key probing ids that do not exist yet (Booxi's ids are sequential) cannot
  make the mirror deny them to every other key once they do. An object the mirror comes
  to hold (a webhook, a poll, a write) is answered at once: coverage is checked first.
- **Each key has a fill budget**: a token bucket per ``[[api.keys]]`` name,
  ``[api] fills_per_minute`` on average and ``fill_burst`` at once. A fill that would
  call Booxi beyond it is answered 429 in Booxi's shape with ``Retry-After``: here the
  caller is what is limited (unlike Booxi's own 429, which the mirror answers 503). A
  read the mirror can answer from storage, or a remembered 404, costs nothing.

The third guard is in the budget itself: while polls wait for it, fills get at most half
of it (``RateBudget.limit_share``, switched on by ``cli.runtime``).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Callable

from aiohttp import web

from mirror.config import ApiConfig

NOT_FOUND_TTL_S = 600.0
NOT_FOUND_MAX = 10_000


@dataclasses.dataclass
class TokenBucket:
    """``burst`` tokens, refilled at ``per_s`` a second."""

    per_s: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token: 0.0, or the seconds until one will be there (nothing taken)."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.per_s)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_s


class FillGuard:
    """Remembered 404s and per-key fill budgets; see the module doc."""

    def __init__(
        self,
        *,
        fills_per_minute: float,
        burst: int,
        not_found_ttl_s: float = NOT_FOUND_TTL_S,
        not_found_max: int = NOT_FOUND_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not fills_per_minute > 0 or burst < 1:
            raise ValueError("fills_per_minute must be positive and burst at least 1")
        self.fills_per_minute = fills_per_minute
        self.burst = burst
        self._per_s = fills_per_minute / 60.0
        self._ttl = not_found_ttl_s
        self._max = not_found_max
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._missing: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()

    @classmethod
    def from_config(cls, api: ApiConfig) -> FillGuard:
        return cls(fills_per_minute=api.fills_per_minute, burst=api.fill_burst)

    def take(self, caller: str) -> float:
        """One fill for ``caller``: 0.0 when it may go, else the seconds until it may."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:  # one per configured key: bounded by the config
            bucket = self._buckets[caller] = TokenBucket(self._per_s, self.burst, self.burst, now)
        return bucket.take(now)

    def retry_after(self, wait_s: float) -> int:
        """Whole seconds for ``Retry-After``: at least 1."""
        return max(1, math.ceil(wait_s))

    def remember_missing(self, caller: str, scope: str) -> None:
        """Booxi answered 404 for ``scope`` asked by ``caller``."""
        key = (caller, scope)
        self._missing[key] = self._clock() + self._ttl
        self._missing.move_to_end(key)
        while len(self._missing) > self._max:
            self._missing.popitem(last=False)

    def known_missing(self, caller: str, scope: str) -> bool:
        """Whether Booxi said 404 for ``scope`` to ``caller`` less than the TTL ago."""
        key = (caller, scope)
        until = self._missing.get(key)
        if until is None:
            return False
        if self._clock() >= until:
            del self._missing[key]
            return False
        return True

    def clear_missing(self) -> None:
        """Forget every remembered 404 (Booxi will be asked again)."""
        self._missing.clear()

    @property
    def remembered(self) -> int:
        return len(self._missing)


FILL_GUARD = web.AppKey("fill_guard", FillGuard)
