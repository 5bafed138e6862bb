"""Benchmark: the read path of a real ``booxi-mirror serve``, against the HTTP ceiling.

Fills a mirror from the simulator with one ``booxi-mirror sync``, starts ``serve``, and
drives it with ``wrk -t1 -c32`` (a second process; ``apt-get install wrk``):

- the ceiling: bare aiohttp (``bench.ceiling``) answering the same bytes as a calendar
  week, in the same run;
- ``GET /calendar``: every staff member's week, this one and the next (day-aligned, every
  event type and include: what the store's tablets ask);
- ``GET /booking?clientId=``: client histories;
- a repeat read with ``If-None-Match`` (304), against ``GET /livez`` of the same server.

Each read is made once before it is measured (a client's first history read fetches it
from Booxi; the tablets' views are then ready). Prints requests/s, p50, p99 and each
one's share of its ceiling, with the issue's targets: calendar and history at least
0.5 of the ceiling with p99 at most 20 ms, the 304 at least 0.8 of ``/livez``.

    .venv/bin/python -m bench.read_calendar [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sqlite3
import sys
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

from bench import wrk
from bench.common import clean_env, free_port, print_table, start_serve
from simulator import SimSettings, create_app

PARTNER = "bench-partner-key-0123456789"
API_KEY = "bench-api-key-0123456789"
FMT = "%Y-%m-%dT%H:%M:%SZ"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
WEEK = (
    "&eventType=Appointment&eventType=GroupEvent&eventType=TimeSlot&include=Appointment"
    "&include=GroupEvent&include=TimeSlot&include=Staff&include=Service"
)


def write_config(folder: Path, sim_port: int, port: int) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[booxi]\nbase_url = "http://127.0.0.1:{sim_port}/booking/v1"\n'
        f'partner_key = "{PARTNER}"\nrequests_per_second = 1000\nrequests_per_minute = 100000\n'
        f'[storage]\nurl = "sqlite+aiosqlite:///{folder / "bench.db"}"\n'
        "[sync]\nhorizon_days = 30\ncalendar_interval_s = 86400\nreference_interval_s = 86400\n"
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nstaleness_s = 86400\n'
        "fills_per_minute = 100000\nfill_burst = 100000\n"
        f'[[api.keys]]\nname = "bench"\nkey = "{API_KEY}"\n'
    )
    return path


def _ids(db: Path) -> tuple[list[int], list[int]]:
    with sqlite3.connect(db) as conn:
        staff = [r[0] for r in conn.execute("SELECT id FROM staff ORDER BY id")]
        clients = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT client_id FROM booking WHERE client_id IS NOT NULL "
                "ORDER BY client_id LIMIT 100"
            )
        ]
    return staff, clients


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


async def run(seconds: float, connections: int) -> None:
    if not wrk.available():
        raise SystemExit("this benchmark needs wrk: apt-get install wrk")
    folder = Path(tempfile.mkdtemp(prefix="booxi-bench-"))
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
    sim_port, port, ceiling_port = free_port(), free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", sim_port).start()
    config = write_config(folder, sim_port, port)
    sync = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "--config", str(config), "sync",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=clean_env(),
    )  # fmt: skip
    out, _ = await sync.communicate()
    print(out.decode().strip())
    serve, _ = await start_serve(config, folder / "serve.log")
    ceiling = None
    try:
        base = f"http://127.0.0.1:{port}"
        staff, clients = _ids(folder / "bench.db")
        monday = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        monday -= dt.timedelta(days=monday.weekday())
        weeks = [
            f"/booking/v1/calendar?staffId={s}&from={start.strftime(FMT)}"
            f"&to={(start + dt.timedelta(days=7)).strftime(FMT)}{WEEK}"
            for s in staff
            for start in (monday, monday + dt.timedelta(days=7))
        ]
        histories = [f"/booking/v1/booking?clientId={c}" for c in clients]
        week_tags, week_bodies = await _warm(base, weeks)
        await _warm(base, histories)
        await runner.cleanup()  # the mirror answers alone from now on
        body = max(week_bodies, key=len)
        (folder / "answer.json").write_bytes(body)
        ceiling = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.ceiling", "--port", str(ceiling_port),
            "--body", str(folder / "answer.json"), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert ceiling.stdout is not None
        await ceiling.stdout.readline()

        def measure(url: str, paths: list[str], **options: object) -> wrk.Run:
            return wrk.run(url, paths, seconds=seconds, connections=connections, **options)  # type: ignore[arg-type]

        loop = asyncio.get_running_loop()
        bare = await loop.run_in_executor(
            None, lambda: measure(f"http://127.0.0.1:{ceiling_port}", ["/"])
        )
        calendar = await loop.run_in_executor(None, lambda: measure(base, weeks, headers=AUTH))
        history = await loop.run_in_executor(None, lambda: measure(base, histories, headers=AUTH))
        livez = await loop.run_in_executor(None, lambda: measure(base, ["/livez"]))
        revalidated = await loop.run_in_executor(
            None, lambda: measure(base, weeks, headers=AUTH, etags=week_tags)
        )
    finally:
        serve.send_signal(signal.SIGTERM)
        await serve.wait()
        if ceiling is not None:
            ceiling.send_signal(signal.SIGINT)
            await ceiling.wait()
    sizes = sorted(len(b) for b in week_bodies)
    print(
        f"\nwrk -t1 -c{connections}, {seconds:.0f} s each; {len(staff)} staff x 2 weeks "
        f"({sizes[len(sizes) // 2] / 1024:.0f} KB median answer, {len(body) / 1024:.0f} KB "
        f"for the ceiling), {len(histories)} client histories\n"
    )

    def row(what: str, run: wrk.Run, of: wrk.Run, want: str) -> tuple[str, ...]:
        return (
            what,
            f"{run.requests_per_s:,.0f}",
            f"{run.p50_ms:.2f} ms",
            f"{run.p99_ms:.2f} ms",
            f"{run.requests_per_s / of.requests_per_s:.2f}",
            want,
            str(run.bad),
        )

    print_table(
        ("what", "req/s", "p50", "p99", "of ceiling", "want", "not 2xx/3xx"),
        [
            row(
                "bare aiohttp, same bytes (ceiling)",
                bare,
                bare,
                "1.00",
            ),
            row("GET /calendar (a staff week)", calendar, bare, ">= 0.50, p99 <= 20 ms"),
            row("GET /booking?clientId (history)", history, bare, ">= 0.50, p99 <= 20 ms"),
            row("GET /livez (ceiling for 304s)", livez, livez, "1.00"),
            row("GET /calendar, If-None-Match: 304", revalidated, livez, ">= 0.80"),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.connections))


if __name__ == "__main__":
    main()
