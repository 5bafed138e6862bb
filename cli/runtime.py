"""The running parts of a mirror, opened and closed together: what the CLI commands
share. The database is migrated on opening; the writer drains before closing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from mirror.budget import Priority
from mirror.client import BooxiClient
from mirror.config import Config
from mirror.leader import PollLeadership, try_period
from mirror.scheduler import Poller
from mirror.shared_budget import SharedRateBudget
from mirror.sync import PassResult, run_pass
from storage.engine import make_engine
from storage.migrate import upgrade
from storage.reader import Reader
from storage.writer import Writer

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0
# Once start-up is over (modules, config, the app, the first reference refresh and the
# staff schedule: 10,000 jobs for a chain), its objects live as long as the process:
# ``gc.freeze()`` takes them out of the cyclic collector's full passes. Measured with
# 10,000 staff under read load: three full collections of 25-65 ms in the 8 s before,
# none in the 15 s after. Objects freed later by reference counting are freed as ever;
# only cycles among the frozen would stay.
FREEZE_AFTER_S = 60.0
# While a poll waits for the rate budget (a staff calendar is behind), first-demand fills
# may take at most this share of it (``RateBudget.limit_share``).
FILL_SHARE_WHILE_POLLS_WAIT = 0.5


@dataclasses.dataclass
class Runtime:
    config: Config
    engine: AsyncEngine
    writer: Writer
    client: BooxiClient


@contextlib.asynccontextmanager
async def open_database(config: Config) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(config.storage.url)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def open_runtime(config: Config) -> AsyncIterator[Runtime]:
    """Database (migrated), writer and Booxi client; the partner key is required.

    The client's rate budget is shared through the database (``mirror.shared_budget``)
    with every other process on it: ``serve`` replicas and CLI commands alike."""
    config.require_partner_key()
    async with open_database(config) as engine:
        writer = Writer(engine)
        await writer.start()
        budget = SharedRateBudget(
            engine, config.booxi.requests_per_second, config.booxi.requests_per_minute
        )
        budget.limit_share(Priority.FILL, FILL_SHARE_WHILE_POLLS_WAIT)
        client = BooxiClient.from_config(config.booxi, budget)
        try:
            yield Runtime(config, engine, writer, client)
        finally:
            await client.close()
            await budget.close()
            await writer.close()


async def sync_once(
    config: Config,
    *,
    merchant_ids: Sequence[int] = (),
    staff_ids: Sequence[int] = (),
    on_staff: Callable[[int, int], None] | None = None,
) -> PassResult:
    async with open_runtime(config) as runtime:
        return await run_pass(
            runtime.client,
            runtime.writer,
            runtime.engine,
            horizon_days=config.sync.horizon_days,
            merchant_ids=merchant_ids or config.sync.merchant_ids,
            staff_ids=staff_ids,
            on_staff=on_staff,
        )


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
    from api.app import create_app
    from api.connections import ConnectionGuard, GuardedSite
    from api.keys import METRICS, POLL_LEADERSHIP
    from api.metrics import PollLeaderCollector
    from cli.access_lines import AccessLines

    async with open_runtime(config) as runtime:
        reader = Reader(runtime.engine)
        await reader.start()
        app = create_app(
            config,
            engine=runtime.engine,
            writer=runtime.writer,
            reader=reader,
            booxi=runtime.client,
        )
        leadership = _poll_leadership(runtime)
        app[POLL_LEADERSHIP] = leadership  # /readyz says whether this replica polls
        app[METRICS].registry.register(PollLeaderCollector(lambda: leadership.is_leader))
        runner = web.AppRunner(
            app,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_GRACE_S,
            access_log_class=AccessLines,
            keepalive_timeout=config.api.keepalive_timeout_s,
        )
        await runner.setup()
        signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
        try:
            guard = ConnectionGuard(
                header_timeout_s=config.api.header_timeout_s,
                max_connections=config.api.max_connections,
            )
            site = GuardedSite(runner, config.api.host, config.api.port, guard)
            await site.start()
            url = f"http://{config.api.host}:{config.api.port}"
            log.info("serve.started", extra={"url": url})
            if ready is not None:
                ready(url)
            await leadership.start()
            freeze = loop.call_later(FREEZE_AFTER_S, gc.freeze)
            await stop.wait()
            freeze.cancel()
            log.info("serve.stopping")
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            await leadership.close()  # a poll in flight is cut short, before the client closes
            await runner.cleanup()  # in-flight requests finish first
            await reader.close()
        log.info("serve.stopped")


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
