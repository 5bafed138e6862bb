"""A faithful local Booxi: seeded data, Booxi's paths and rules, webhooks, fault injection.

Public names: ``SimSettings`` (what shapes a run), ``create_app`` (the aiohttp
application, for tests in-process) and ``run_simulator`` (serve until cancelled, as
``booxi-mirror sim`` does). Where Booxi's behaviour is not public, each module's
docstring states the choice made.
"""

from simulator.app import create_app
from simulator.server import run_simulator
from simulator.settings import SimSettings

__all__ = ["SimSettings", "create_app", "run_simulator"]
