"""The mirror's Prometheus metrics, in a ``CollectorRegistry`` of each application's own
(several applications run in one test process; the global registry would mix them).

- ``booxi_mirror_http_request_duration_seconds{route,method,status_class}``: observed
  by the front door (``api.middleware``) for every request; ``route`` is the route's name in
  ``api.routes`` (``unmatched`` for a path no route serves), ``status_class`` is ``2xx``,
  ``4xx``... (a request whose client went away before the answer counts as ``4xx``, 499).
  Counted by ``RequestDurations`` (a list of bucket counts per route, method and status,
  made into the histogram at each scrape) rather than ``prometheus_client.Histogram``,
  whose ``observe`` takes a lock per bucket and per sum: 3 microseconds of every ready
  answer's 60, against a fraction of one.
- ``booxi_mirror_poll_leader``: 1 while this replica runs the poller, else 0
  (``PollLeaderCollector``, registered by ``serve`` with ``mirror.leader``'s answer).
- Computed at each scrape from a ``Snapshot`` the ``/metrics`` handler reads first
  (collectors are synchronous; the database is not): sync lag per store, webhook lag,
  and the Booxi client's and its rate budget's counters; ready answers (``api.ready``):
  hits, misses, drops, how many are held and their bytes; ``booxi_mirror_queue_size``
  per store: the requests in its dispatch queue (``api.dispatch_queue``) from now to the poll
  horizon.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from mirror.budget import BudgetStats

PREFIX = "booxi_mirror_"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_GONE = 499  # nginx's "client closed request"


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What one scrape reports beyond the request histogram.

    ``store_oldest`` maps a store id (None if unknown) to the oldest last success among
    its staff calendars, None when one of them never succeeded. ``upstream`` is the Booxi
    client's ``stats`` counter and ``budget`` its rate budget's; None without a client.
    """

    now: dt.datetime
    store_oldest: Mapping[int | None, dt.datetime | None] = dataclasses.field(default_factory=dict)
    latest_webhook_at: dt.datetime | None = None
    upstream: Counter[str] | None = None
    budget: BudgetStats | None = None
    ready: ReadyStats | None = None
    queue_sizes: Mapping[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class ReadyStats:
    hits: int
    misses: int
    drops: int
    held: int
    bytes: int
    waits: int


class Metrics:
    """One application's registry: the request histogram and the scrape-time collector."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_durations = RequestDurations()
        self.registry.register(self.request_durations)
        self.observe = self.request_durations.observe
        self._scrape = _ScrapeCollector()
        self.registry.register(self._scrape)

    def render(self, snapshot: Snapshot, accept: str = "") -> tuple[bytes, str]:
        """The exposition (text format, or OpenMetrics if ``accept`` asks) and its type."""
        encoder, content_type = choose_encoder(accept)
        self._scrape.snapshot = snapshot  # no await until it is cleared: one scrape at a time
        try:
            return encoder(self.registry), content_type
        finally:
            self._scrape.snapshot = None


class RequestDurations(Collector):
    """``booxi_mirror_http_request_duration_seconds``: per (route, method, status), a
    count per bucket (the last one past the largest bound) and the sum; observed on the
    event loop, read at a scrape, on the event loop too. Methods outside ``METHODS`` count
    as ``other``, so a client cannot make new series."""

    NAME = PREFIX + "http_request_duration_seconds"
    HELP = "Time to answer an HTTP request, by route name, method and status class."

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method if method in METHODS else "other", status)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0] * (len(BUCKETS) + 2)
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def collect(self) -> Iterable[Metric]:
        by_class: dict[tuple[str, str, str], list[float]] = {}
        for (route, method, status), counts in self._counts.items():
            labels = (route, method, f"{status // 100}xx")
            merged = by_class.setdefault(labels, [0] * len(counts))
            for index, count in enumerate(counts):
                merged[index] += count
        family = HistogramMetricFamily(
            self.NAME, self.HELP, labels=("route", "method", "status_class")
        )
        for labels, counts in sorted(by_class.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip((*BUCKETS, math.inf), counts[:-1], strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            family.add_metric(list(labels), buckets, sum_value=counts[-1])
        return [family]


class _ScrapeCollector(Collector):
    """Yields the families of the current ``Snapshot`` (none outside a scrape)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def describe(self) -> Iterable[Metric]:
        return list(_families(None))

    def collect(self) -> Iterable[Metric]:
        if self.snapshot is None:
            return []
        return list(_families(self.snapshot))


class PollLeaderCollector(Collector):
    """``booxi_mirror_poll_leader``: whether this replica polls Booxi (``is_leader()``)."""

    def __init__(self, is_leader: Callable[[], bool]) -> None:
        self._is_leader = is_leader

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            PREFIX + "poll_leader",
            "1 while this replica runs the poller (it holds the poll lock), else 0.",
        )
        gauge.add_metric([], 1.0 if self._is_leader() else 0.0)
        return [gauge]


def _families(snapshot: Snapshot | None) -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        PREFIX + "sync_lag_seconds",
        "Seconds since the oldest last successful calendar poll among a store's staff "
        "(+Inf while one of them has never been polled successfully).",
        labels=("merchant_id",),
    )
    webhook = GaugeMetricFamily(
        PREFIX + "webhook_lag_seconds",
        "Seconds since the newest webhook event arrived (absent before the first).",
    )
    if snapshot is not None:
        for merchant_id, oldest in sorted(
            snapshot.store_oldest.items(), key=lambda item: (item[0] is None, item[0] or 0)
        ):
            seconds = math.inf if oldest is None else _seconds(snapshot.now - oldest)
            lag.add_metric(["unknown" if merchant_id is None else str(merchant_id)], seconds)
        if snapshot.latest_webhook_at is not None:
            webhook.add_metric([], _seconds(snapshot.now - snapshot.latest_webhook_at))
    yield lag
    yield webhook
    queue = GaugeMetricFamily(
        PREFIX + "queue_size",
        "Appointment requests in a store's dispatch queue (no staff member, or pending "
        "approval) from now to the poll horizon.",
        labels=("merchant_id",),
    )
    if snapshot is not None and snapshot.queue_sizes is not None:
        for merchant_id, size in sorted(snapshot.queue_sizes.items()):
            queue.add_metric([str(merchant_id)], size)
    yield queue
    if snapshot is None:  # describe(): every family, no sample
        yield from _upstream(Counter())
        yield from _budget(None)
        yield from _ready(None)
        return
    if snapshot.ready is not None:
        yield from _ready(snapshot.ready)
    if snapshot.upstream is not None:
        yield from _upstream(snapshot.upstream)
    if snapshot.budget is not None:
        yield from _budget(snapshot.budget)


def _upstream(stats: Counter[str]) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        PREFIX + "upstream_requests", "Requests sent to Booxi, by method.", labels=("method",)
    )
    errors = CounterMetricFamily(
        PREFIX + "upstream_errors",
        "Failed Booxi requests, by kind (unavailable, rate_limited, rejected...).",
        labels=("kind",),
    )
    retries = CounterMetricFamily(PREFIX + "upstream_retries", "Booxi requests retried.")
    for name, count in sorted(stats.items()):
        if name.startswith("requests."):
            requests.add_metric([name.removeprefix("requests.")], count)
        elif name.startswith("error."):
            errors.add_metric([name.removeprefix("error.")], count)
    retries.add_metric([], stats.get("retries", 0))
    yield from (requests, errors, retries)


def _budget(stats: BudgetStats | None) -> Iterator[Metric]:
    granted = CounterMetricFamily(
        PREFIX + "rate_limit_granted",
        "Requests the fair-use budget let through, by priority.",
        labels=("priority",),
    )
    waited = CounterMetricFamily(
        PREFIX + "rate_limit_waits",
        "Requests that had to wait for the fair-use budget, by priority.",
        labels=("priority",),
    )
    wait_s = CounterMetricFamily(
        PREFIX + "rate_limit_wait_seconds",
        "Time spent waiting for the fair-use budget, by priority.",
        labels=("priority",),
    )
    pauses = CounterMetricFamily(
        PREFIX + "rate_limit_pauses", "Pauses of every request after a 429 from Booxi."
    )
    queued = GaugeMetricFamily(
        PREFIX + "rate_limit_queued", "Requests waiting for the fair-use budget now."
    )
    if stats is not None:
        for priority in sorted(stats.granted_by_priority):
            granted.add_metric([priority], stats.granted_by_priority[priority])
            waited.add_metric([priority], stats.waited_by_priority.get(priority, 0))
            wait_s.add_metric([priority], stats.wait_s_by_priority.get(priority, 0.0))
        pauses.add_metric([], stats.pauses)
        queued.add_metric([], stats.queued)
    yield from (granted, waited, wait_s, pauses, queued)


def _ready(stats: ReadyStats | None) -> Iterator[Metric]:
    families: tuple[CounterMetricFamily | GaugeMetricFamily, ...] = (
        CounterMetricFamily(PREFIX + "ready_hits", "Reads answered from ready answers."),
        CounterMetricFamily(PREFIX + "ready_misses", "Cacheable reads built from storage."),
        CounterMetricFamily(PREFIX + "ready_drops", "Ready answers dropped by a change."),
        GaugeMetricFamily(PREFIX + "ready_answers", "Ready answers held."),
        GaugeMetricFamily(PREFIX + "ready_bytes", "Bytes of the ready answers held."),
        CounterMetricFamily(
            PREFIX + "ready_waits",
            "Misses that waited for another read building the same answer.",
        ),
    )
    if stats is not None:
        values = (stats.hits, stats.misses, stats.drops, stats.held, stats.bytes, stats.waits)
        for family, value in zip(families, values, strict=True):
            family.add_metric([], value)
    yield from families


def _seconds(delta: dt.timedelta) -> float:
    return max(0.0, delta.total_seconds())
