"""Benchmark: the read path, ``GET /booking/v1/calendar`` on a real ``booxi-mirror serve``.

Fills a mirror from the simulator with one ``booxi-mirror sync``, then measures
calendar reads (random staff, 7-day windows, every event type and include) against
the HTTP ceiling of the same server (``GET /livez``), with the ratio of each.

    .venv/bin/python -m bench.read_calendar [--requests 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from simulator import SimSettings, create_app

PARTNER = "bench-partner-key"
API_KEY = "bench-api-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(folder: Path, sim_port: int, port: int) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[booxi]\nbase_url = "http://127.0.0.1:{sim_port}/booking/v1"\n'
        f'partner_key = "{PARTNER}"\nrequests_per_second = 1000\nrequests_per_minute = 100000\n'
        f'[storage]\nurl = "sqlite+aiosqlite:///{folder / "bench.db"}"\n'
        "[sync]\nhorizon_days = 30\ncalendar_interval_s = 86400\nreference_interval_s = 86400\n"
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nstaleness_s = 86400\n'
        f'[[api.keys]]\nname = "bench"\nkey = "{API_KEY}"\n'
    )
    return path


async def measure(base: str, urls: list[str], concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        pending = iter(urls)

        async def worker() -> None:
            for url in pending:
                began = time.perf_counter()
                async with s.get(base + url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{url}: HTTP {response.status}")
                latencies.append(time.perf_counter() - began)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(urls) / (time.perf_counter() - started), latencies


async def run(requests: int, concurrency: int) -> None:
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
    sim_port, port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", sim_port).start()
    config = write_config(folder, sim_port, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOXI_")}
    sync = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "--config",
        str(config),
        "sync",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    out, _ = await sync.communicate()
    print(out.decode().strip())
    serve = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "--config",
        str(config),
        "serve",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert serve.stdout is not None
    await serve.stdout.readline()
    await runner.cleanup()  # the mirror answers alone from now on
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(1)
    staff = list(settings_staff(folder))
    now = dt.datetime.now(dt.UTC)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    urls = []
    for _ in range(requests):
        start = now + dt.timedelta(days=rng.randrange(-5, 20))
        urls.append(
            f"/booking/v1/calendar?staffId={rng.choice(staff)}&from={start.strftime(fmt)}"
            f"&to={(start + dt.timedelta(days=7)).strftime(fmt)}&eventType=Appointment"
            "&eventType=GroupEvent&eventType=TimeSlot&include=Appointment&include=GroupEvent"
            "&include=TimeSlot&include=Staff&include=Service"
        )
    try:
        ceiling, _ = await measure(base, ["/livez"] * requests, concurrency)
        rate, latencies = await measure(base, urls, concurrency)
    finally:
        serve.send_signal(signal.SIGTERM)
        await serve.communicate()
    ordered = sorted(latencies)
    rows = [
        ("HTTP ceiling: GET /livez", f"{ceiling:,.0f} req/s", "1.00"),
        ("GET /calendar (7 days, all includes)", f"{rate:,.0f} req/s", f"{rate / ceiling:.2f}"),
        ("  latency p50", f"{statistics.median(latencies) * 1000:.1f} ms", ""),
        ("  latency p99", f"{ordered[int(len(ordered) * 0.99)] * 1000:.1f} ms", ""),
    ]
    print(f"\n{requests} requests, {concurrency} concurrent, {len(staff)} staff\n")
    widths = [max(len(r[i]) for r in rows + [("measure", "value", "vs ceiling")]) for i in range(3)]
    for row in [("measure", "value", "vs ceiling"), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def settings_staff(folder: Path) -> list[int]:
    import sqlite3

    with sqlite3.connect(folder / "bench.db") as conn:
        return [row[0] for row in conn.execute("SELECT id FROM staff ORDER BY id")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.concurrency))


if __name__ == "__main__":
    main()
