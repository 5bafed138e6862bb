"""``booxi-mirror serve``'s process: ``build_app(config)`` is the mirror with every part
it runs, each started and stopped by the application (``app.cleanup_ctx``, in start
order; aiohttp stops them in reverse); ``serve(config)`` listens with it until stopped.

The parts, in start order: the database (migrated), the writer and the Booxi client
(``cli.runtime``), the application's own (``api.app.create_app``: reader, ready
answers' change feed and change log pruning, re-polls), poll leadership
(``mirror.leader``: the poller, and retention with it, runs while this replica leads),
and the start-up freeze."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from cli.runtime import Runtime, migrated, running
from mirror.config import Config
from mirror.leader import PollLeadership, try_period
from mirror.scheduler import Poller

if TYPE_CHECKING:
    from api.app import CleanupContext

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0
# Once start-up is over (modules, config, the app, the first reference refresh and the
# staff schedule: 10,000 jobs for a chain), its objects live as long as the process:
# ``gc.freeze()`` takes them out of the cyclic collector's full passes. Measured with
# 10,000 staff under read load: three full collections of 25-65 ms in the 8 s before,
# none in the 15 s after. Objects freed later by reference counting are freed as ever;
# only cycles among the frozen would stay. Frozen twice: a second after start (modules,
# config, the app, the schedule: without it, the read benchmark's p99 was 22-34 ms in
# the first minute, full collections of those objects; with it 9-11 ms), and again
# once the first minute's reference refresh exists.
FREEZE_AFTER_S = (1.0, 60.0)


def build_app(config: Config) -> web.Application:
    """The mirror as ``serve`` runs it: API, webhook receiver and poller, every part
    started by the application's start-up and stopped by its cleanup."""
    from api.app import create_app
    from api.keys import METRICS, POLL_LEADERSHIP
    from api.metrics import PollLeaderCollector

    runtime = Runtime.from_config(config)
    app = create_app(
        config,
        engine=runtime.engine,
        writer=runtime.writer,
        booxi=runtime.client,
        parts=_runtime_parts(runtime),
    )
    leadership = _poll_leadership(runtime)
    app[POLL_LEADERSHIP] = leadership  # /readyz says whether this replica polls
    app[METRICS].registry.register(PollLeaderCollector(lambda: leadership.is_leader))
    app.cleanup_ctx.append(_leading(leadership))
    app.cleanup_ctx.append(_freeze_later)
    return app


async def serve(
    config: Config,
    *,
    ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """API, webhook receiver and poller in one process, until SIGTERM or SIGINT.

    Connections are kept in hand (``api.connections``): ``[api] header_timeout_s`` for a
    new connection's first request head, ``keepalive_timeout_s`` between requests, at
    most ``max_connections`` at once.

    ``ready(url)`` is called once the API listens. With ``stop`` given, serving ends when
    it is set, and the caller handles signals (as ``booxi-mirror demo`` does).
    """
    from api.connections import ConnectionGuard, GuardedSite
    from cli.access_lines import AccessLines

    runner = web.AppRunner(
        build_app(config),
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_GRACE_S,
        access_log_class=AccessLines,
        keepalive_timeout=config.api.keepalive_timeout_s,
    )
    signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        await runner.setup()  # every part started
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
        guard = ConnectionGuard(
            header_timeout_s=config.api.header_timeout_s,
            max_connections=config.api.max_connections,
        )
        await GuardedSite(runner, config.api.host, config.api.port, guard).start()
        url = f"http://{config.api.host}:{config.api.port}"
        log.info("serve.started", extra={"url": url})
        if ready is not None:
            ready(url)
        await stop.wait()
        log.info("serve.stopping")
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await runner.cleanup()  # in-flight requests finish, then every part stops
    log.info("serve.stopped")


def _runtime_parts(runtime: Runtime) -> list[CleanupContext]:
    """The database (migrated), then the writer and the Booxi client (``cli.runtime``)."""

    async def database(_: web.Application) -> AsyncIterator[None]:
        async with migrated(runtime.engine):
            yield

    async def writer_and_client(_: web.Application) -> AsyncIterator[None]:
        async with running(runtime):
            yield

    return [database, writer_and_client]


def _leading(leadership: PollLeadership) -> CleanupContext:
    """Poll leadership: tried for at start-up, given up at cleanup (a poll in flight is
    cut short) before the client closes."""

    async def leading(_: web.Application) -> AsyncIterator[None]:
        await leadership.start()
        yield
        await leadership.close()

    return leading


async def _freeze_later(_: web.Application) -> AsyncIterator[None]:
    """``gc.freeze()`` as start-up ends (``FREEZE_AFTER_S``)."""
    loop = asyncio.get_running_loop()
    freezes = [loop.call_later(after, gc.freeze) for after in FREEZE_AFTER_S]
    yield
    for freeze in freezes:
        freeze.cancel()


def _poll_leadership(runtime: Runtime) -> PollLeadership:
    """The poller runs while this replica leads (``mirror.leader``): a new ``Poller`` at
    each acquisition, stopped (its polls in flight cut short) when leadership is lost."""
    config = runtime.config
    pollers: list[Poller] = []

    def start_polling() -> None:
        poller = Poller(runtime.client, runtime.writer, runtime.engine, config.sync)
        poller.start(retention_days=config.privacy.retention_days)
        pollers.append(poller)

    async def stop_polling() -> None:
        while pollers:
            await pollers.pop().stop()

    return PollLeadership(
        runtime.engine,
        on_acquired=start_polling,
        on_lost=stop_polling,
        try_every_s=try_period(config.sync.calendar_interval_s),
    )
