"""How fresh an answer is, said on every read (RFC 9211 ``Cache-Status``, ``Age``,
``X-Mirror-Synced-At``).

- ``booxi-mirror; hit``: served from the mirror, synced within ``[api] staleness_s``;
- ``booxi-mirror; hit; detail=stale``: served from the mirror, but older than that, or
  the last attempt to sync it failed (Booxi unreachable): the data may be out of date;
- ``booxi-mirror; fwd=uri-miss; stored``: the mirror did not cover it, fetched it from
  Booxi just now, stored it and served it;
- ``booxi-mirror; hit; detail=partial``: a search the mirror could not confirm with
  Booxi (unreachable): what it holds, which may not be every match.

``X-Mirror-Synced-At`` is the oldest last-success time among the scopes the answer
draws on, and ``Age`` the seconds since then. ``X-Mirror-Coverage: partial`` marks an
answer reaching further back than anything the mirror holds and than Booxi serves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

from storage.times import is_stale, stored_utc, utcnow

CACHE = "booxi-mirror"


@dataclasses.dataclass(frozen=True)
class Freshness:
    synced_at: dt.datetime | None
    failing: bool = False
    filled: bool = False
    partial: bool = False
    incomplete: bool = False  # the mirror cannot vouch that it holds every match

    @classmethod
    def of_sync_rows(
        cls, rows: Iterable[tuple[Any, Any, int]], *, fallback: dt.datetime | None = None
    ) -> Freshness:
        """From sync_state rows (last_success_at, last_attempt_at, consecutive_failures)."""
        successes: list[dt.datetime] = []
        failing = False
        for success, _attempt, failures in rows:
            if success is not None:
                successes.append(stored_utc(success))
            failing = failing or bool(failures)
        synced = min(successes) if successes else fallback
        return cls(synced, failing)

    def headers(self, staleness_s: float, now: dt.datetime | None = None) -> dict[str, str]:
        now = now or utcnow()
        headers: dict[str, str] = {}
        if self.synced_at is not None:
            age = max(0, int((now - self.synced_at).total_seconds()))
            headers["Age"] = str(age)
            headers["X-Mirror-Synced-At"] = _wire_time(self.synced_at)
        if self.incomplete:
            headers["Cache-Status"] = f"{CACHE}; hit; detail=partial"
        elif self.filled:
            headers["Cache-Status"] = f"{CACHE}; fwd=uri-miss; stored"
        elif self.stale(staleness_s, now):
            headers["Cache-Status"] = f"{CACHE}; hit; detail=stale"
        else:
            headers["Cache-Status"] = f"{CACHE}; hit"
        if self.partial:
            headers["X-Mirror-Coverage"] = "partial"
        return headers

    def stale(self, staleness_s: float, now: dt.datetime) -> bool:
        if self.synced_at is None or self.failing:
            return True
        return is_stale(self.synced_at, staleness_s, now)

    def as_filled(self) -> Freshness:
        return dataclasses.replace(self, filled=True)

    def merged(self, other: Freshness) -> Freshness:
        times = [t for t in (self.synced_at, other.synced_at) if t is not None]
        return Freshness(
            min(times) if times else None,
            self.failing or other.failing,
            self.filled or other.filled,
            self.partial or other.partial,
            self.incomplete or other.incomplete,
        )


@functools.lru_cache(maxsize=1024)
def _wire_time(moment: dt.datetime) -> str:
    """``X-Mirror-Synced-At``'s value; a ready answer repeats its sync time on every hit."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
