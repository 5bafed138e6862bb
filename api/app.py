"""``create_app(config, engine=..., writer=...)``: the mirror's aiohttp application."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api import webhooks
from api.errors import error_middleware
from api.keys import CONFIG, ENGINE, WRITER
from mirror.config import Config
from storage.writer import Writer

MAX_BODY = 1024 * 1024


async def livez(request: web.Request) -> web.Response:
    """The process answers (no dependency checked): for liveness probes."""
    return web.json_response({"status": "ok"})


async def healthz(request: web.Request) -> web.Response:
    """Alive, and the database answers."""
    async with request.app[ENGINE].connect() as conn:
        await conn.execute(text("SELECT 1"))
    return web.json_response({"status": "ok"})


def create_app(config: Config, *, engine: AsyncEngine, writer: Writer) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app[CONFIG] = config
    app[ENGINE] = engine
    app[WRITER] = writer
    app.router.add_post("/webhooks/booxi", webhooks.receive)
    app.router.add_put("/webhooks/booxi", webhooks.receive)
    app.router.add_get("/livez", livez)
    app.router.add_get("/healthz", healthz)
    return app
