"""Fault switches, set at run time through ``POST /_sim/faults``.

The names are a contract other tools drive: ``latency_ms``, ``error_rate``,
``rate_limit``, ``outage``, ``webhook_drop_rate``, ``webhook_duplicate_rate``,
``webhook_reorder``, ``webhook_delay_ms``. Two more are ours: ``throttle_rate``
(a fraction of API calls answered 429 whatever the budget) and ``webhook_delay_rate``
(the fraction of deliveries that ``webhook_delay_ms`` applies to; 1 by default).

Forced answers, ours too: ``force_status`` (an HTTP status from 400 to 599, or
``null``, the default) answers every API call whose path, relative to
``/booking/v1``, starts with one of ``force_paths`` (plain string prefixes such as
``"/booking"``, which also covers ``/booking/A1``; ``[]``, the default, means every
path) with that status in Booxi's error shape ``{"message": "forced by the
simulator", "code": status}``, plus ``Retry-After: 1`` on a 429. It is applied after
the key check, before the fair-use budget. ``force_count`` (a whole number of at
least 1, or ``null`` for "until reset") counts the calls still to force: each forced
call takes one off, and at 0 ``force_status`` and ``force_count`` go back to ``null``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from simulator.errors import bad_request

RATES = (
    "error_rate",
    "throttle_rate",
    "webhook_drop_rate",
    "webhook_duplicate_rate",
    "webhook_delay_rate",
)
FLAGS = ("rate_limit", "outage", "webhook_reorder")
MILLISECONDS = ("latency_ms", "webhook_delay_ms")
MAX_MS = 120_000


def _check_status(name: str, value: object) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599
    ):
        raise bad_request(f"{name} must be an HTTP status from 400 to 599, or null")


def _check_paths(name: str, value: object) -> None:
    if not isinstance(value, list) or not all(
        isinstance(p, str) and p.startswith("/") for p in value
    ):
        raise bad_request(f'{name} must be a list of paths under /booking/v1, such as "/booking"')


def _check_count(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise bad_request(f"{name} must be a whole number of at least 1, or null")


FORCED = {"force_status": _check_status, "force_paths": _check_paths, "force_count": _check_count}


@dataclasses.dataclass
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    rate_limit: bool = True
    outage: bool = False
    throttle_rate: float = 0.0
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_reorder: bool = False
    webhook_delay_ms: int = 0
    webhook_delay_rate: float = 1.0
    force_status: int | None = None
    force_paths: list[str] = dataclasses.field(default_factory=list)
    force_count: int | None = None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def forced(self, path: str) -> int | None:
        """The status to force on the API call to ``path`` (under ``/booking/v1``), if any.

        Counts the call against ``force_count``.
        """
        status = self.force_status
        if status is None:
            return None
        if self.force_paths and not any(path.startswith(p) for p in self.force_paths):
            return None
        if self.force_count is not None:
            self.force_count -= 1
            if self.force_count <= 0:
                self.force_status = self.force_count = None
        return status

    def update(self, changes: object) -> None:
        """Apply a JSON object of changes, all or nothing."""
        if not isinstance(changes, dict):
            raise bad_request("faults must be a JSON object")
        valid = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise bad_request(
                f"unknown fault {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
            )
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name in FLAGS:
                if not isinstance(value, bool):
                    raise bad_request(f"{name} must be true or false")
            elif name in RATES:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise bad_request(f"{name} must be a number from 0 to 1")
                if not 0 <= value <= 1:
                    raise bad_request(f"{name} must be from 0 to 1, got {value}")
                value = float(value)
            elif name in MILLISECONDS and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MS
            ):
                raise bad_request(f"{name} must be a whole number of milliseconds, 0 to {MAX_MS}")
            elif name in FORCED:
                FORCED[name](name, value)
            checked[name] = value
        for name, value in checked.items():
            setattr(self, name, value)
