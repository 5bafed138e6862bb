"""Operations: liveness, health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from api.errors import ApiError
from api.keys import ENGINE


async def livez(request: web.Request) -> web.Response:
    """The process answers (no dependency checked): for liveness probes."""
    return web.json_response({"status": "ok"})


async def healthz(request: web.Request) -> web.Response:
    """Alive, and the database answers."""
    async with request.app[ENGINE].connect() as conn:
        await conn.execute(text("SELECT 1"))
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    raise ApiError(501, "not built yet")


async def metrics(request: web.Request) -> web.Response:
    raise ApiError(501, "not built yet")


async def openapi(request: web.Request) -> web.Response:
    raise ApiError(501, "not built yet")
