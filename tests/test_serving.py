"""``cli.serving.build_app``: the mirror as ``serve`` runs it, started in-process like our
other applications (``aiohttp_server``): every part starts with the application and
stops with it (``cleanup_ctx``)."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from api.access_log import AccessLogger
from api.keys import WRITER
from cli.serving import build_app
from mirror.config import Config
from storage.writer import WriterClosedError
from tests.conftest import PARTNER_KEY, WEBHOOK_SECRET, Sim


async def test_the_served_app_starts_its_parts_and_stops_them_with_it(
    sim: Sim, tmp_path: Path, aiohttp_server: AiohttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mirror.leader")
    config = Config.model_validate(
        {
            "booxi": {
                "base_url": sim.api,
                "partner_key": PARTNER_KEY,
                "requests_per_second": 200,
                "requests_per_minute": 10_000,
            },
            "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}"},
            "sync": {"horizon_days": 30, "calendar_interval_s": 300},
            "webhook": {"secret": WEBHOOK_SECRET},
        }
    )
    app = build_app(config)
    server = await aiohttp_server(app, access_log_class=AccessLogger)
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/readyz")) as response,
    ):
        checks = (await response.json())["checks"]
    # the database was migrated, and this replica (alone on SQLite) leads the polls
    assert checks["database"] == {"status": "ok"}
    assert checks["poller"] == {"status": "ok", "polls": True}

    await server.close()
    with pytest.raises(WriterClosedError):
        await app[WRITER].run(lambda _conn: None)
    messages = [record.getMessage() for record in caplog.records]
    assert messages.index("poll.leader.acquired") < messages.index("poll.leader.released")
