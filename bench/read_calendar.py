"""Benchmark: the read path of a real ``booxi-mirror serve``, against the HTTP ceiling.

Fills a mirror from the simulator with one ``booxi-mirror sync``, starts ``serve``, and
drives it with ``wrk -t1 -c32`` (a second process; ``apt-get install wrk``):

- the ceiling: bare aiohttp (``bench.ceiling``) answering the same bytes as a calendar
  week, in the same run;
- ``GET /calendar``: every staff member's week, this one and the next (day-aligned, every
  event type and include: what the store's tablets ask);
- ``GET /booking?clientId=``: client histories;
- a repeat read with ``If-None-Match`` (304), against ``GET /livez`` of the same server.

Each read is made before it is measured, histories first (a client's first history read
fetches it from Booxi, and what that writes drops the calendar weeks it touches), then
all again until a whole pass is answered from ready answers (the re-polls that fills ask
for are done): the tablets' views are then ready. Prints requests/s, p50, p99 and each
one's share of its ceiling, with the issue's targets: calendar and history at least
0.5 of the ceiling with p99 at most 20 ms, the 304 at least 0.8 of ``/livez``.

    .venv/bin/python -m bench.read_calendar [--seconds 10] [--connections 32] \\
        [--storage postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

With ``--storage``, the same reads are measured on SQLite and on PostgreSQL (a database
made on that server for the run), side by side in one table against one ceiling. With
``--database URL`` (repeatable), also against a database as it is, for example the
1,000,000 bookings of ``bench.generate_db``, with no Booxi behind the mirror: as many
staff weeks and histories, sampled from it. A second table gives each ``serve``'s start
(to listening, to its first ``/readyz`` answer) and its memory after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import random
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench import wrk
from bench.common import anon_rss_mb, clean_env, free_port, print_table, rss_mb, start_serve
from simulator import SimSettings, create_app
from storage.engine import make_engine

PARTNER = "bench-partner-key-0123456789"
API_KEY = "bench-api-key-0123456789"
FMT = "%Y-%m-%dT%H:%M:%SZ"
STAFF_SAMPLE = 40  # staff members whose two weeks are read (as many as the synced world has)
CLIENT_SAMPLE = 100  # clients whose histories are read
AUTH = {"Authorization": f"Bearer {API_KEY}"}
WEEK = (
    "&eventType=Appointment&eventType=GroupEvent&eventType=TimeSlot&include=Appointment"
    "&include=GroupEvent&include=TimeSlot&include=Staff&include=Service"
)


def write_config(folder: Path, sim_port: int, port: int, url: str) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[booxi]\nbase_url = "http://127.0.0.1:{sim_port}/booking/v1"\n'
        f'partner_key = "{PARTNER}"\nrequests_per_second = 1000\nrequests_per_minute = 100000\n'
        f'[storage]\nurl = "{url}"\n'
        "[sync]\nhorizon_days = 30\ncalendar_interval_s = 86400\nreference_interval_s = 86400\n"
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nstaleness_s = 86400\n'
        "fills_per_minute = 100000\nfill_burst = 100000\n"
        f'[[api.keys]]\nname = "bench"\nkey = "{API_KEY}"\n'
    )
    return path


async def _ids(url: str) -> tuple[list[int], list[int]]:
    """Up to ``STAFF_SAMPLE`` staff members and ``CLIENT_SAMPLE`` clients with bookings
    (a seeded sample, the same for the same database), read through the storage layer's
    engine (either database)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            staff = list((await conn.execute(text("SELECT id FROM staff ORDER BY id"))).scalars())
            clients = list(
                (
                    await conn.execute(
                        text(
                            "SELECT DISTINCT client_id FROM booking WHERE client_id IS NOT NULL "
                            "ORDER BY client_id"
                        )
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()
    rng = random.Random(7)
    return (
        sorted(rng.sample(staff, min(STAFF_SAMPLE, len(staff)))),
        sorted(rng.sample(clients, min(CLIENT_SAMPLE, len(clients)))),
    )


@contextlib.asynccontextmanager
async def _database(storage: str, folder: Path) -> AsyncIterator[tuple[str, str]]:
    """(label, URL) of an empty database: an SQLite file in ``folder``, or a database
    made for this run on the PostgreSQL server of ``storage`` (dropped at the end, so
    the benchmark never writes into a database that holds anything)."""
    if storage == "sqlite":
        yield "SQLite", f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        return
    if storage.startswith(GIVEN):
        url = storage.removeprefix(GIVEN)
        yield f"given {make_url(url).get_backend_name()}", url
        return
    server = make_url(storage)
    if not server.drivername.startswith("postgresql"):
        raise SystemExit(f"--storage takes a PostgreSQL URL, not {server.drivername}")
    name = f"booxi_mirror_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield "PostgreSQL", server.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def _warm(base: str, paths: list[str]) -> tuple[list[str], list[bytes]]:
    """Each path read once (twice: the first may fill); their ETags and bodies."""
    etags, bodies = [], []
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for path in paths:
            for _ in range(2):
                async with session.get(base + path) as response:
                    body = await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{path}: HTTP {response.status} {body[:200]!r}")
            etags.append(response.headers["ETag"])
            bodies.append(body)
    return etags, bodies


async def _settle(base: str, paths: list[str], passes: int = 20) -> None:
    """Read every path again until a whole pass is answered from ready answers alone.

    A fill's bookings carry provisional calendar event ids until the re-poll it asked
    for brings Booxi's own (``mirror.repoll``), a second or so later; what that re-poll
    writes drops the answers it touches. The tablets' views are ready once that is done.
    """
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for _ in range(passes):
            before = await _ready_misses(session, base)
            for path in paths:
                async with session.get(base + path) as response:
                    await response.read()
            if await _ready_misses(session, base) == before:
                return
            await asyncio.sleep(0.5)
    print(f"warning: reads still built afresh after {passes} passes", file=sys.stderr)


async def _ready_misses(session: aiohttp.ClientSession, base: str) -> float:
    async with session.get(base + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("booxi_mirror_ready_misses_total "):
            return float(line.split()[1])
    raise SystemExit("no booxi_mirror_ready_misses_total in /metrics")


GIVEN = "given:"  # a storage that names a database to read as it is (--database)


@dataclasses.dataclass
class Measured:
    label: str
    started_s: float  # from the command to its "serving on" line
    ready_s: float  # from the command to its first answer of /readyz
    rss_mb: float  # after the run
    anon_rss_mb: float
    calendar: wrk.Run
    history: wrk.Run
    livez: wrk.Run
    revalidated: wrk.Run
    calendar_ceiling: wrk.Run  # bare aiohttp answering each week's path with its bytes
    history_ceiling: wrk.Run  # the same for the histories
    median_week_kb: float
    median_history_kb: float
    staff: int
    histories: int


async def _measure(
    storage: str, folder: Path, sim_port: int, seconds: float, connections: int
) -> Measured:
    """Sync a new database of ``storage`` from the simulator, serve it, warm every
    path, and measure it with wrk."""
    async with _database(storage, folder) as (label, url):
        port = free_port()
        given = storage.startswith(GIVEN)
        # a given database is read as it is: no Booxi (a closed port), nothing synced
        config = write_config(folder, free_port() if given else sim_port, port, url)
        if not given:
            sync = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", "--config", str(config), "sync",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                env=clean_env(),
            )  # fmt: skip
            out, _ = await sync.communicate()
            print(f"{label}: {out.decode().strip()}")
        base = f"http://127.0.0.1:{port}"

        def measure(paths: list[str], base: str = base, **options: Any) -> wrk.Run:
            return wrk.run(base, paths, seconds=seconds, connections=connections, **options)

        began = time.perf_counter()
        serve, started_s = await start_serve(config, folder / f"serve-{len(label)}.log")
        try:
            async with aiohttp.ClientSession() as session, session.get(base + "/readyz") as got:
                await got.read()
            ready_s = time.perf_counter() - began
            staff, clients = await _ids(url)
            monday = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            monday -= dt.timedelta(days=monday.weekday())
            weeks = [
                f"/booking/v1/calendar?staffId={s}&from={start.strftime(FMT)}"
                f"&to={(start + dt.timedelta(days=7)).strftime(FMT)}{WEEK}"
                for s in staff
                for start in (monday, monday + dt.timedelta(days=7))
            ]
            histories = [f"/booking/v1/booking?clientId={c}" for c in clients]
            # histories first: a first history read fills the client's bookings from
            # Booxi, and what it writes drops the calendar weeks it touches
            _, history_bodies = await _warm(base, histories)
            week_tags, week_bodies = await _warm(base, weeks)
            await _settle(base, histories + weeks)

            loop = asyncio.get_running_loop()
            calendar = await loop.run_in_executor(None, lambda: measure(weeks, headers=AUTH))
            history = await loop.run_in_executor(None, lambda: measure(histories, headers=AUTH))
            livez = await loop.run_in_executor(None, lambda: measure(["/livez"]))
            revalidated = await loop.run_in_executor(
                None, lambda: measure(weeks, headers=AUTH, etags=week_tags)
            )
            rss, anon = rss_mb(serve.pid), anon_rss_mb(serve.pid)
        finally:
            if serve.returncode is None:
                serve.send_signal(signal.SIGTERM)
                await serve.wait()
            else:  # it died: say how, with the end of its log (the folder goes with the run)
                log = (folder / f"serve-{len(label)}.log").read_text(errors="replace")
                print(
                    f"{label}: serve exited with {serve.returncode}:\n{log[-3000:]}",
                    file=sys.stderr,
                )
    # the ceilings: the same paths answered with the same bytes by bare aiohttp, measured
    # as the reads were, while no ``serve`` runs
    calendar_ceiling = await _ceiling(folder, dict(zip(weeks, week_bodies, strict=True)), measure)
    history_ceiling = await _ceiling(
        folder, dict(zip(histories, history_bodies, strict=True)), measure
    )
    return Measured(
        label,
        started_s,
        ready_s,
        rss,
        anon,
        calendar,
        history,
        livez,
        revalidated,
        calendar_ceiling,
        history_ceiling,
        _median_kb(week_bodies),
        _median_kb(history_bodies),
        len(staff),
        len(histories),
    )


def _median_kb(bodies: list[bytes]) -> float:
    return sorted(len(b) for b in bodies)[len(bodies) // 2] / 1024


async def _ceiling(
    folder: Path, bodies: dict[str, bytes], measure: Callable[..., wrk.Run]
) -> wrk.Run:
    """Bare aiohttp answering each of these paths with its body (``bench.ceiling``),
    measured as the reads are (``measure``: the same wrk settings)."""
    port = free_port()
    where = folder / "ceiling"
    where.mkdir(exist_ok=True)
    files = {}
    for index, (path, body) in enumerate(bodies.items()):
        (where / f"{index}.json").write_bytes(body)
        files[path] = str(where / f"{index}.json")
    (where / "bodies.json").write_text(json.dumps(files))
    ceiling = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ceiling", "--port", str(port),
        "--bodies", str(where / "bodies.json"), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert ceiling.stdout is not None
        await ceiling.stdout.readline()
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: measure(list(bodies), base=f"http://127.0.0.1:{port}")
        )
    finally:
        ceiling.send_signal(signal.SIGINT)
        await ceiling.wait()


async def run(seconds: float, connections: int, storages: list[str]) -> None:
    if not wrk.available():
        raise SystemExit("this benchmark needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="booxi-bench-") as name:
        runs = await _measure_all(Path(name), seconds, connections, storages)
    first = runs[0]
    print(
        f"\nwrk -t1 -c{connections}, {seconds:.0f} s each; {first.staff} staff x 2 weeks "
        f"({first.median_week_kb:.0f} KB median answer), {first.histories} client histories "
        f"({first.median_history_kb:.0f} KB median); each ceiling is bare aiohttp answering "
        "the same paths with the same bytes\n"
    )

    def cells(run: wrk.Run, of: wrk.Run | None) -> list[str]:
        bad = f" ({run.bad} not 2xx/3xx)" if run.bad else ""
        share = "1.00" if of is None else f"{run.requests_per_s / of.requests_per_s:.2f}"
        return [f"{run.requests_per_s:,.0f}{bad}", f"{run.p99_ms:.2f} ms", share]

    what: list[tuple[str, str, Callable[[Measured], tuple[wrk.Run, wrk.Run | None]]]] = [
        ("ceiling: calendar weeks' bytes", "1.00", lambda m: (m.calendar_ceiling, None)),
        (
            "GET /calendar (a staff week)",
            ">= 0.50, p99 <= 20 ms",
            lambda m: (m.calendar, m.calendar_ceiling),
        ),
        ("ceiling: histories' bytes", "1.00", lambda m: (m.history_ceiling, None)),
        (
            "GET /booking?clientId (history)",
            ">= 0.50, p99 <= 20 ms",
            lambda m: (m.history, m.history_ceiling),
        ),
        ("GET /livez (ceiling for 304s)", "1.00", lambda m: (m.livez, None)),
        (
            "GET /calendar, If-None-Match: 304",
            ">= 0.80 of /livez",
            lambda m: (m.revalidated, m.livez),
        ),
    ]
    header = ["what"]
    for measured in runs:
        header += [f"{measured.label} req/s", "p99", "of ceiling"]
    rows = [
        [label, *[cell for m in runs for cell in cells(*pick(m))], want]
        for label, want, pick in what
    ]
    print_table(
        ("serve", "listening after", "/readyz answered after", "RSS after the run", "anonymous"),
        [
            (
                m.label,
                f"{m.started_s:.2f} s",
                f"{m.ready_s:.2f} s",
                f"{m.rss_mb:.0f} MB",
                f"{m.anon_rss_mb:.0f} MB",
            )
            for m in runs
        ],
    )
    print()
    print_table([*header, "want"], rows)
    for other in runs[1:]:  # issue #11: a big database's p99 within 1.5x of the small one's
        print(
            f"\np99 of {other.label} / {first.label}: calendar "
            f"{other.calendar.p99_ms / first.calendar.p99_ms:.2f}x, history "
            f"{other.history.p99_ms / first.history.p99_ms:.2f}x (want <= 1.5x for a large "
            "database)"
        )


async def _measure_all(
    folder: Path, seconds: float, connections: int, storages: list[str]
) -> list[Measured]:
    """Each storage measured in turn, beside one simulator (idle once warm: no poll is due
    within the run)."""
    settings = SimSettings(
        partner_key=PARTNER,
        merchant_key="unused",
        stores=4,
        staff_per_store=10,
        clients=400,
        rate_limit=False,
        page_size=50,
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    sim_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", sim_port).start()
    try:
        return [await _measure(s, folder, sim_port, seconds, connections) for s in storages]
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="also measure on PostgreSQL: a server's URL (postgresql+asyncpg://...); a "
        "database is made there for the run and dropped after it",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        action="append",
        default=[],
        help="also measure a database as it is (one bench.generate_db made), with no Booxi "
        "behind the mirror; repeatable",
    )
    args = parser.parse_args()
    storages = [
        "sqlite",
        *([args.storage] if args.storage else []),
        *(GIVEN + url for url in args.database),
    ]
    asyncio.run(run(args.seconds, args.connections, storages))


if __name__ == "__main__":
    main()
