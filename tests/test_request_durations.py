"""The request histogram's counting (``api.metrics.RequestDurations``): what a scrape
shows is Prometheus's histogram of what was observed, statuses merged by class."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import BUCKETS, RequestDurations


def _samples(durations: RequestDurations) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(durations)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_buckets_are_cumulative_and_statuses_merge_by_class() -> None:
    durations = RequestDurations()
    durations.observe("calendar", "GET", 200, 0.0004)
    durations.observe("calendar", "GET", 304, 0.001)  # on a bound: counted in it
    durations.observe("calendar", "GET", 204, 0.003)
    durations.observe("calendar", "GET", 200, 30.0)  # past the largest bound
    durations.observe("calendar", "GET", 404, 0.02)

    samples = _samples(durations)
    name = "booxi_mirror_http_request_duration_seconds"
    ok = (("method", "GET"), ("route", "calendar"), ("status_class", "2xx"))

    def bucket(le: str, labels: tuple[tuple[str, str], ...] = ok) -> float:
        return samples[(name + "_bucket", tuple(sorted((*labels, ("le", le)))))]

    assert bucket("0.001") == 1  # 200 in 0.4 ms; the 304 is 3xx
    assert bucket("0.005") == 2
    assert bucket("10.0") == 2
    assert bucket("+Inf") == 3
    assert samples[(name + "_count", ok)] == 3
    assert samples[(name + "_sum", ok)] == pytest.approx(30.0034)
    redirect = (("method", "GET"), ("route", "calendar"), ("status_class", "3xx"))
    assert bucket("0.001", redirect) == 1
    missing = (("method", "GET"), ("route", "calendar"), ("status_class", "4xx"))
    assert bucket("0.01", missing) == 0 and bucket("0.025", missing) == 1
    assert len([key for key in samples if key[0] == name + "_bucket"]) == 3 * (len(BUCKETS) + 1)


def test_a_method_outside_http_s_own_counts_as_other() -> None:
    durations = RequestDurations()
    for method in ("BREW", "PROPFIND", "X" * 50):  # a client cannot make new series
        durations.observe("unmatched", method, 405, 0.001)

    counts = {
        labels: value
        for (sample, labels), value in _samples(durations).items()
        if sample.endswith("_count")
    }
    assert counts == {(("method", "other"), ("route", "unmatched"), ("status_class", "4xx")): 3}
