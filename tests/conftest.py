"""Shared fixtures: the simulator over a real loopback socket, and a webhook receiver."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from simulator import SimSettings, create_app
from simulator.keys import WORLD
from simulator.world import World

PARTNER_KEY = "test-partner-key-0123"
MERCHANT_KEY = "test-merchant-key-4567"
DATA = Path(__file__).parent / "data"
ALL_TYPES = ("Appointment", "GroupEvent", "TimeSlot")
ALL_INCLUDES = ("Appointment", "GroupEvent", "TimeSlot", "Staff", "Service")


class _ServerErrors(logging.Handler):
    """Collects what an answer of 500 leaves in the logs: an unhandled exception in the
    mirror (``api.unhandled``), in the simulator (``sim.unhandled``) or in aiohttp."""

    NAMES = ("api.unhandled", "sim.unhandled", "Error handling request")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(message.startswith(name) for name in self.NAMES):
            self.seen.append(f"{record.name}: {message} {getattr(record, 'path', '')}")


@pytest.fixture(autouse=True)
def no_server_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test: no server (ours or the simulator) answered a 500 along the way."""
    handler = _ServerErrors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    if "allow_server_errors" not in request.keywords:
        assert not handler.seen, f"a server answered 500: {handler.seen}"


def cli_env(**overrides: str) -> dict[str, str]:
    """The environment for a ``python -m cli`` subprocess: no ``BOOXI_`` variables from
    outside (its config file alone decides), no terminal size, plus ``overrides``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BOOXI_") and k not in ("COLUMNS", "LINES")
    }
    return {**env, **overrides}


@pytest.fixture
def clean_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For tests that run the CLI in-process: no BOOXI_ variables from outside, and no
    registered secrets, log handlers or logger levels left behind."""
    from cli import logs

    for name in list(os.environ):
        if name.upper().startswith(("BOOXI_MIRROR_", "BOOXI_SIM_")):
            monkeypatch.delenv(name)
    monkeypatch.setattr(logs, "_secrets", [])
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = (*logs._NOISY_LOGGERS, "aiohttp.access")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)


def sample(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Sim:
    """A running simulator and a session that carries the partner key."""

    server: TestServer
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def api(self) -> str:
        return self.url + "/booking/v1"

    @property
    def world(self) -> World:
        return self.server.app[WORLD]

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        url = path if path.startswith("http") else self.api + path
        async with self.session.request(
            method, url, params=params, json=json_body, headers=headers
        ) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    async def get(self, path: str, params: Any = None) -> tuple[int, Any]:
        return await self.call("GET", path, params=params)

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.url + path, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def page_all(self, path: str, params: Any, key: str) -> list[Any]:
        """Follow cursors to the end; every page's ``key`` list, concatenated."""
        items: list[Any] = []
        status, body = await self.get(path, params)
        assert status == 200, body
        items.extend(body[key])
        while body.get("cursor"):
            status, body = await self.get(path, {"cursor": body["cursor"]})
            assert status == 200, body
            items.extend(body[key])
        return items


def calendar_params(
    staff_id: int,
    start: dt.datetime,
    end: dt.datetime,
    types: tuple[str, ...] = ALL_TYPES,
    includes: tuple[str, ...] = ALL_INCLUDES,
) -> list[tuple[str, str]]:
    return (
        [("staffId", str(staff_id)), ("from", rfc3339(start)), ("to", rfc3339(end))]
        + [("eventType", t) for t in types]
        + [("include", i) for i in includes]
    )


SimFactory = Callable[..., Awaitable[Sim]]


@pytest.fixture
async def make_sim(aiohttp_server: AiohttpServer) -> AsyncIterator[SimFactory]:
    """Start simulators with settings overridden per test (``aiohttp_server`` stops them)."""
    sessions: list[aiohttp.ClientSession] = []

    async def start(**overrides: Any) -> Sim:
        settings = SimSettings(
            **{
                "partner_key": PARTNER_KEY,
                "merchant_key": MERCHANT_KEY,
                "stores": 2,
                "staff_per_store": 3,
                "clients": 60,
                "page_size": 20,
                "rate_limit": False,
                **overrides,
            }
        )
        server = await aiohttp_server(create_app(settings))
        session = aiohttp.ClientSession(
            headers={"Booxi-PartnerKey": PARTNER_KEY}, timeout=aiohttp.ClientTimeout(total=30)
        )
        sessions.append(session)
        return Sim(server, session)

    yield start
    for session in sessions:
        await session.close()


@pytest.fixture
async def sim(make_sim: SimFactory) -> Sim:
    return await make_sim()


@dataclasses.dataclass
class Receiver:
    """A stand-in webhook endpoint: records every call, can fail the first N."""

    server: TestServer
    calls: list[tuple[dict[str, str], bytes]] = dataclasses.field(default_factory=list)
    fail_next: int = 0
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.calls]

    async def wait_for(self, count: int, within_s: float = 10) -> None:
        async with asyncio.timeout(within_s):
            while len(self.calls) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def receiver(aiohttp_server: AiohttpServer) -> Receiver:
    app = web.Application()
    holder: list[Receiver] = []

    async def hook(request: web.Request) -> web.Response:
        rec = holder[0]
        body = await request.read()
        if rec.fail_next > 0:
            rec.fail_next -= 1
            return web.Response(status=500)
        rec.calls.append((dict(request.headers), body))
        rec.arrived.set()
        return web.Response(status=204)

    app.router.add_post("/hook", hook)
    holder.append(Receiver(await aiohttp_server(app)))
    return holder[0]


# ---- the mirror's side -------------------------------------------------------------
@dataclasses.dataclass
class Store:
    """A mirror database, migrated, with its writer running: a real SQLite file, or the
    test process's database on the PostgreSQL server of ``POSTGRES_URL_VARIABLE``,
    emptied for this test (``_store_database``)."""

    engine: Any
    writer: Any
    file: Path | None  # the SQLite file; None on PostgreSQL
    url: str = ""

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    @property
    def path(self) -> Path:
        """The SQLite file (a test that reads it directly runs on SQLite only)."""
        if self.file is None:
            raise AssertionError("this test reads the SQLite file: not on PostgreSQL")
        return self.file

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).mappings())


# ---- engines ----------------------------------------------------------------------
# The PostgreSQL server the two-engine tests use (``.ci/run`` sets it): ``postgres_url``
# is a new database, dropped at the end; ``store`` a migrated database of the test
# process, emptied before each test (see ``_store_database``). Unset: those tests skip,
# saying why.
POSTGRES_URL_VARIABLE = "BOOXI_MIRROR_TEST_POSTGRES_URL"
ENGINES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``both_engines`` that uses ``store`` (or ``database_url``) runs once
    per engine."""
    if metafunc.definition.get_closest_marker("both_engines"):
        for name in ("store", "database_url"):
            if name in metafunc.fixturenames:
                metafunc.parametrize(name, ENGINES, indirect=True)
                break


def _on_postgres(url: str, *statements: str) -> None:
    """Run statements outside any transaction, in a thread of their own (fixtures that
    call this may run inside the test's event loop)."""
    import concurrent.futures

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> None:
        admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                for statement in statements:
                    await conn.execute(text(statement))
        finally:
            await admin.dispose()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=30)


def _new_postgres_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped (connections and all) once
    the caller resumes this generator. Its commits do not wait for the disk
    (``synchronous_commit``): no test crashes the server."""
    import os
    import uuid

    from sqlalchemy.engine import make_url

    server = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (set by .ci/run)")
    name = f"booxi_mirror_test_{uuid.uuid4().hex[:16]}"
    _on_postgres(
        server,
        f'CREATE DATABASE "{name}"',
        f'ALTER DATABASE "{name}" SET synchronous_commit = off',
    )
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    _on_postgres(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped (connections and all) at the
    end of the test."""
    yield from _new_postgres_database()


# what emptying the store's database keeps: the schema's revision, the cursor key
_KEPT_TABLES = ("alembic_version", "mirror_secret")
# DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE makes new files for every
# table and index (about 0.3 s here); change_log last, since the other deletions write
# to it (its triggers) and its sequence restarts
_EMPTY_DATABASE = f"""
DO $$ DECLARE name text; BEGIN
  PERFORM pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid();
  FOR name IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
      AND tablename NOT IN {_KEPT_TABLES!r} ORDER BY tablename = 'change_log' LOOP
    EXECUTE format('DELETE FROM %I', name);
  END LOOP;
  FOR name IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() LOOP
    EXECUTE format('ALTER SEQUENCE %I RESTART', name);
  END LOOP;
END $$
"""


@pytest.fixture(scope="session")
def _store_database() -> Iterator[str]:
    """A migrated PostgreSQL database for the ``store`` tests of this test process (an
    xdist worker runs one test at a time), emptied before each: creating and migrating
    a database costs about 0.6 s, emptying it (connections left over ended, every table
    but ``_KEPT_TABLES`` emptied, sequences restarted) a few hundredths."""
    for url in _new_postgres_database():
        _migrate(url)
        yield url


def _migrate(url: str) -> None:
    import concurrent.futures

    from storage.engine import make_engine
    from storage.migrate import upgrade

    async def run() -> None:
        engine = make_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=60)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty database of the engine asked for (``sqlite`` unless the
    test is parametrized by ``both_engines``)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}"


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    from storage.engine import make_engine
    from storage.migrate import upgrade
    from storage.writer import Writer

    path: Path | None = None
    if getattr(request, "param", "sqlite") == "postgresql":
        url = str(request.getfixturevalue("_store_database"))
        _on_postgres(url, _EMPTY_DATABASE)
    else:
        path = tmp_path / "mirror.db"
        url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    await upgrade(engine)
    writer = Writer(engine)
    await writer.start()
    yield Store(engine, writer, path, url)
    await writer.close()
    await engine.dispose()


def booxi_client(
    sim: Sim, *, per_second: float = 1000, per_minute: int = 100_000, **kwargs: Any
) -> Any:
    """A BooxiClient for ``sim``; a generous budget unless the test is about the budget."""
    from mirror.budget import RateBudget
    from mirror.client import BooxiClient

    return BooxiClient(sim.api, PARTNER_KEY, budget=RateBudget(per_second, per_minute), **kwargs)


def owned_by_the_app(
    engine: Any, writer: Any, booxi: Any = None, *, migrate: bool = False
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry (``create_app(..., parts=[...])``) by which a test's app
    owns its database (migrated first if asked), its writer and its Booxi client, as
    ``cli.serving.build_app``'s app owns serve's: closed with the app."""

    async def parts(_: web.Application) -> AsyncIterator[None]:
        if migrate:
            from storage.migrate import upgrade

            await upgrade(engine)
        async with writer:
            yield
        if booxi is not None:
            await booxi.close()
        await engine.dispose()

    return parts


WEBHOOK_SECRET = "mirror-webhook-secret-0123456789"
UNLIMITED_FILLS = {"fills_per_minute": 1_000_000, "fill_burst": 1_000_000}
API_KEY = "mirror-api-key-for-tests-0123456789"


@dataclasses.dataclass
class MirrorApp:
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def webhook_url(self) -> str:
        return self.url + "/webhooks/booxi"


@pytest.fixture
async def make_mirror_app(
    store: Store, aiohttp_server: AiohttpServer
) -> AsyncIterator[Callable[..., Awaitable[MirrorApp]]]:
    """Start the mirror's aiohttp application over ``store``, config sections overridden.

    The application starts and stops what it runs (its reader, its ready answers...)
    in its ``cleanup_ctx``; its servers are closed here, while ``store`` is still open
    (``aiohttp_server`` closes them after ``store`` when the simulator came first)."""
    from api.access_log import AccessLogger
    from api.app import create_app
    from mirror.config import Config

    started: list[MirrorApp] = []

    async def start(*, booxi: Any = None, **sections: Any) -> MirrorApp:
        values = {
            "webhook": {"secret": WEBHOOK_SECRET},
            "api": {"keys": [{"name": "all", "key": API_KEY, "scopes": ["read", "write"]}]},
            **sections,
        }
        # tests fill far more than a tablet would: the per-key fill budget is the
        # subject of tests/test_fill_guard.py only
        values["api"] = {**UNLIMITED_FILLS, **values["api"]}
        config = Config.model_validate(values)
        app = create_app(config, engine=store.engine, writer=store.writer, booxi=booxi)
        # as serve logs: no queries
        started.append(MirrorApp(await aiohttp_server(app, access_log_class=AccessLogger)))
        return started[-1]

    yield start
    for mirror in reversed(started):
        await mirror.server.close()


@pytest.fixture
async def mirror_app(make_mirror_app: Callable[..., Awaitable[MirrorApp]]) -> MirrorApp:
    """The mirror's aiohttp application on a loopback port, over ``store``."""
    return await make_mirror_app()
