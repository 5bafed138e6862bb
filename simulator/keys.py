"""The application keys under which the simulator's parts live."""

from __future__ import annotations

import collections
import random
from typing import Any

from aiohttp import web

from simulator.dialects import ActiveDialects
from simulator.faults import Faults
from simulator.ratelimit import FairUse
from simulator.settings import SimSettings
from simulator.webhooks import WebhookDispatcher
from simulator.world import World

SETTINGS = web.AppKey("settings", SimSettings)
WORLD = web.AppKey("world", World)
FAULTS = web.AppKey("faults", Faults)
DIALECTS = web.AppKey("dialects", ActiveDialects)
FAIR_USE = web.AppKey("fair_use", FairUse)
WEBHOOKS = web.AppKey("webhooks", WebhookDispatcher)
FAULT_RNG = web.AppKey("fault_rng", random.Random)
REQUEST_LOG: web.AppKey[collections.deque[dict[str, Any]]] = web.AppKey("request_log")
