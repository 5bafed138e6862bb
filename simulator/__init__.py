"""A faithful local Booxi: seeded data, Booxi's paths and rules, webhooks, fault injection.

Public names: ``SimSettings`` (what shapes a run), ``create_app`` (the aiohttp
application, for tests in-process) and ``run_simulator`` (serve until cancelled, as
``booxi-mirror sim`` does). Where Booxi's behaviour is not public, each module's
docstring states the choice made; ``simulator.dialects`` plays the other readings.

The public names load on first use, so ``simulator.dialects`` (which the CLI reads for
its help) can be imported without aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.app import create_app
    from simulator.server import run_simulator
    from simulator.settings import SimSettings

__all__ = ["SimSettings", "create_app", "run_simulator"]
_HOMES = {
    "SimSettings": "simulator.settings",
    "create_app": "simulator.app",
    "run_simulator": "simulator.server",
}


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
