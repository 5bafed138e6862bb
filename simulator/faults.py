"""Fault switches, set at run time through ``POST /_sim/faults``.

The names are a contract other tools drive: ``latency_ms``, ``error_rate``,
``rate_limit``, ``outage``, ``webhook_drop_rate``, ``webhook_duplicate_rate``,
``webhook_reorder``, ``webhook_delay_ms``. Two more are ours: ``throttle_rate``
(a fraction of API calls answered 429 whatever the budget) and ``webhook_delay_rate``
(the fraction of deliveries that ``webhook_delay_ms`` applies to; 1 by default).
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

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
            checked[name] = value
        for name, value in checked.items():
            setattr(self, name, value)
