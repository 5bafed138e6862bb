"""Booxi's fair-use policy: at most 5 requests a second and 300 a minute per key.

A request answered 400 counts double. **choice**: requests refused with 429 do not
count, and the 429 carries ``Retry-After`` in whole seconds (at least 1): the time
until the oldest counted request leaves the window that is full.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class FairUse:
    def __init__(
        self,
        per_second: int = 5,
        per_minute: int = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[tuple[float, int]]] = {}

    def admit(self, key: str) -> float | None:
        """Count one request for ``key``; or, over budget, the seconds to wait instead."""
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0][0] <= now - 60:
            hits.popleft()
        last_second = [(at, weight) for at, weight in hits if at > now - 1]
        if sum(weight for _, weight in last_second) >= self.per_second:
            return max(1.0, math.ceil(last_second[0][0] + 1 - now))
        if sum(weight for _, weight in hits) >= self.per_minute:
            return max(1.0, math.ceil(hits[0][0] + 60 - now))
        hits.append((now, 1))
        return None

    def charge(self, key: str, weight: int = 1) -> None:
        """Count extra weight for ``key`` (a 400 answer costs one more)."""
        self._hits.setdefault(key, deque()).append((self._clock(), weight))
