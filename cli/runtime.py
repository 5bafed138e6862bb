"""The running parts of a mirror (``Runtime``): database, writer, rate budget and Booxi
client, opened and closed together (``migrated``, ``running``): what the CLI commands
and ``serve`` (``cli.serving``) share. The database is migrated on opening; the writer
drains before closing."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from mirror.budget import Priority
from mirror.client import BooxiClient
from mirror.config import Config
from mirror.shared_budget import SharedRateBudget
from mirror.sync import PassResult, run_pass
from storage.engine import make_engine
from storage.migrate import upgrade
from storage.writer import Writer

# While a poll waits for the rate budget (a staff calendar is behind), first-demand fills
# may take at most this share of it (``RateBudget.limit_share``).
FILL_SHARE_WHILE_POLLS_WAIT = 0.5


@dataclasses.dataclass
class Runtime:
    """The parts every command that talks to Booxi runs on, made but not started."""

    config: Config
    engine: AsyncEngine
    writer: Writer
    budget: SharedRateBudget
    client: BooxiClient

    @classmethod
    def from_config(cls, config: Config) -> Runtime:
        """The partner key is required. The client's rate budget is shared through the
        database (``mirror.shared_budget``) with every other process on it: ``serve``
        replicas and CLI commands alike."""
        config.require_partner_key()
        engine = make_engine(config.storage.url)
        budget = SharedRateBudget(
            engine, config.booxi.requests_per_second, config.booxi.requests_per_minute
        )
        budget.limit_share(Priority.FILL, FILL_SHARE_WHILE_POLLS_WAIT)
        client = BooxiClient.from_config(config.booxi, budget)
        return cls(config, engine, Writer(engine), budget, client)


@contextlib.asynccontextmanager
async def migrated(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The database, migrated on entering; its connections closed on leaving."""
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[Runtime]:
    """The writer started; on leaving, the Booxi client closed, then the budget's
    pending ledger writes waited for, then the writer drained and stopped."""
    await runtime.writer.start()
    try:
        yield runtime
    finally:
        await runtime.client.close()
        await runtime.budget.close()
        await runtime.writer.close()


@contextlib.asynccontextmanager
async def open_database(config: Config) -> AsyncIterator[AsyncEngine]:
    async with migrated(make_engine(config.storage.url)) as engine:
        yield engine


@contextlib.asynccontextmanager
async def open_runtime(config: Config) -> AsyncIterator[Runtime]:
    """Database (migrated), writer and Booxi client (``Runtime.from_config``)."""
    runtime = Runtime.from_config(config)
    async with migrated(runtime.engine), running(runtime):
        yield runtime


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
