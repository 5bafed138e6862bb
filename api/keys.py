"""The application keys under which the mirror's parts live."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from api.metrics import Metrics
from api.retention_marks import PendingNoRetention
from mirror.client import BooxiClient
from mirror.config import Config
from mirror.leader import PollLeadership
from mirror.repoll import Repoller
from storage.reader import Reader
from storage.writer import Writer

CONFIG = web.AppKey("config", Config)
ENGINE = web.AppKey("engine", AsyncEngine)
WRITER = web.AppKey("writer", Writer)
BOOXI = web.AppKey("booxi", BooxiClient)
READER = web.AppKey("reader", Reader)
FILL_LOCKS = web.AppKey("fill_locks", dict)
METRICS = web.AppKey("metrics", Metrics)
OPENAPI = web.AppKey("openapi", bytes)  # the OpenAPI document, as served
NO_RETENTION = web.AppKey("no_retention", PendingNoRetention)
REPOLL = web.AppKey("repoll", Repoller)
POLL_LEADERSHIP = web.AppKey("poll_leadership", PollLeadership)  # set by serve
