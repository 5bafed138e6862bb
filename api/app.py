"""``create_app(config, engine=..., writer=..., booxi=..., parts=...)``: the mirror's
aiohttp application (routes in ``api.routes``). What runs beside the routes (reader,
ready answers, re-polls) starts and stops with it, in ``app.cleanup_ctx``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from api import openapi
from api.fill_guard import FILL_GUARD, FillGuard
from api.invalidation import follow, writes
from api.keys import (
    BOOXI,
    CONFIG,
    ENGINE,
    FILL_LOCKS,
    METRICS,
    NO_RETENTION,
    OPENAPI,
    READER,
    REPOLL,
    WRITER,
)
from api.metrics import Metrics
from api.middleware import front_door
from api.query import CURSOR_KEY
from api.ready import READY, ReadyAnswers, max_bytes_of
from api.retention_marks import PendingNoRetention
from api.routes import ROUTES
from mirror.client import BooxiClient
from mirror.config import Config
from mirror.repoll import Repoller
from storage.mirror_secret import cursor_key
from storage.reader import Reader
from storage.writer import Writer

MAX_BODY = 1024 * 1024
CleanupContext = (
    Callable[[web.Application], AbstractAsyncContextManager[None]]
    | Callable[[web.Application], AsyncIterator[None]]
)


def create_app(
    config: Config,
    *,
    engine: AsyncEngine,
    writer: Writer,
    booxi: BooxiClient | None = None,
    parts: Sequence[CleanupContext] = (),
) -> web.Application:
    """``parts``: ``cleanup_ctx`` entries that the application's own run on (``serve``'s
    database, writer and Booxi client): started before them, stopped after them."""
    metrics = Metrics()  # a registry per application: several can run in one process
    app = web.Application(
        middlewares=[front_door(metrics)],
        client_max_size=MAX_BODY,
    )
    app[METRICS] = metrics
    app[OPENAPI] = openapi.document_bytes(ROUTES)
    app[CONFIG] = config
    app[ENGINE] = engine
    app[WRITER] = writer
    app[FILL_LOCKS] = {}
    app[FILL_GUARD] = FillGuard.from_config(config.api)
    app[NO_RETENTION] = PendingNoRetention()
    app.cleanup_ctx.extend(parts)

    async def load_cursor_key(app: web.Application) -> None:
        """This database's cursor key (made if missing), before the first request."""
        app[CURSOR_KEY] = await writer.run(cursor_key)

    app.on_startup.append(load_cursor_key)
    reader = Reader(engine)

    async def reader_ctx(_: web.Application) -> AsyncIterator[None]:
        await reader.start()
        yield
        await reader.close()

    app.cleanup_ctx.append(reader_ctx)
    app[READER] = reader
    if config.api.ready_answers_mb > 0:
        _keep_answers_ready(app)
    if booxi is not None:
        app[BOOXI] = booxi
        app[REPOLL] = Repoller(booxi, writer, horizon_days=config.sync.horizon_days)

        async def repolls_ctx(app: web.Application) -> AsyncIterator[None]:
            yield
            await app[REPOLL].close()  # before the parts it runs on stop

        app.cleanup_ctx.append(repolls_ctx)
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, path, handler, name=name)
    return app


def _keep_answers_ready(app: web.Application) -> None:
    """Ready answers (``api.ready``), told of this process's writes after each commit
    (``Writer.after_commit``) and of other processes' by following the change log."""
    app[READY] = ReadyAnswers(max_bytes_of(app))
    app.cleanup_ctx.append(writes)
    app.cleanup_ctx.append(follow)
