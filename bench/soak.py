"""Benchmark: a soak of a real ``booxi-mirror serve`` under mixed load, then a connection flood.

Starts the simulator (``booxi-mirror sim``, no rate limit, webhooks to the mirror), fills
an SQLite mirror with one ``booxi-mirror sync``, starts ``booxi-mirror serve`` (polling
every staff calendar every 10 s), then for ``--seconds``:

- reads at 32 concurrent connections: calendar (7 days, every include), a client's
  history, a booking, a client, a store's staff list, over ids taken from the mirror;
- 200 webhook events/s (``--webhooks``) posted to the receiver, signed (Standard
  Webhooks) and with the shared secret: ``appointment.updated`` of real bookings of the
  simulated world (the booking as Booxi has it, a new ``modifiedOn`` and note), plus the
  simulator's own webhooks for 2 random changes a second (``/_sim/mutate``);
- serve's own poll passes against the simulator;

sampling serve's RSS every second. Before the timed part, a warm-up reads each client's
history and record once (the cold start's fills are not the steady state). Then the
flood: 2,000 connections that send half a
request head and 2,000 that go idle after one request, until the server's header and
keep-alive timeouts (2 s and 3 s here) close them; RSS before, at the peak and after.
Issue "Untrusted input and abuse", item 9: no failures, a flat RSS, and RSS after the
flood within 20% of before (``VmRSS``, as the issue says; the anonymous part is shown
beside it: ``VmRSS`` also counts the pages of the database file that reads and polls
touch, ``mmap_size``, which come and go with the page cache, tens of MB within a
second, while what the connections cost is anonymous).

    .venv/bin/python -m bench.soak [--seconds 60] [--concurrency 32] [--webhooks 200]
        [--half-open 2000] [--idle 2000] [--ready-answers-mb 8]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import dataclasses
import datetime as dt
import json
import random
import signal
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from bench.common import (
    anon_rss_mb,
    clean_env,
    free_port,
    percentile,
    print_table,
    rss_mb,
    slope_per_minute,
    start_serve,
    work_folder,
)

PARTNER = "soak-partner-key-0123456789"
MERCHANT = "soak-merchant-key-0123456789"
API_KEY = "soak-api-key-0123456789"
SECRET = "soak-webhook-secret-0123456789"
SIGNING = "whsec_" + base64.b64encode(b"soak signing secret of 32 bytes!").decode()
HEADER_TIMEOUT_S = 2.0
KEEPALIVE_TIMEOUT_S = 3.0
FMT = "%Y-%m-%dT%H:%M:%SZ"
READS: tuple[tuple[str, int], ...] = (  # route, weight
    ("calendar", 30),
    ("booking-history", 15),
    ("booking", 30),
    ("client", 15),
    ("staff-list", 10),
)
MAX_WEBHOOKS_IN_FLIGHT = 256
RSS_GROWTH_ALLOWED = 0.20  # after the flood, within 20% of before
FLAT_MB_PER_MIN = 2.0  # the soak's RSS slope over its last 3/4 counts as no growth below this


# --ready-answers-mb: serve's [api] ready_answers_mb (0: none). Small, so that the ready
# answers reach their bound in the soak's first seconds and the slope shows growth past
# it: with 64 MB they were still filling after a minute, and what each costs beyond the
# bytes counted for it (14 to 27% more, measured with calendar weeks and bookings) read
# as 5 to 25 MB/min of growth; with 8 MB, +0.6 to +7.8 MB/min in five runs (README).
DEFAULT_READY_ANSWERS_MB = 8.0
READY_ANSWERS_MB = DEFAULT_READY_ANSWERS_MB


def write_config(folder: Path, sim_port: int, port: int) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[booxi]\nbase_url = "http://127.0.0.1:{sim_port}/booking/v1"\n'
        f'partner_key = "{PARTNER}"\nrequests_per_second = 200\nrequests_per_minute = 100000\n'
        f'[storage]\nurl = "sqlite+aiosqlite:///{folder / "soak.db"}"\n'
        "[sync]\nhorizon_days = 30\ncalendar_interval_s = 30\nreference_interval_s = 60\n"
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nstaleness_s = 86400\n'
        f"header_timeout_s = {HEADER_TIMEOUT_S}\nkeepalive_timeout_s = {KEEPALIVE_TIMEOUT_S}\n"
        "max_connections = 5000\nfills_per_minute = 100000\nfill_burst = 1000\n"
        f"ready_answers_mb = {READY_ANSWERS_MB}\n"
        f'[[api.keys]]\nname = "soak"\nkey = "{API_KEY}"\n'
        f'[webhook]\nsecret = "{SECRET}"\nsigning_secret = "{SIGNING}"\n'
    )
    return path


async def start_sim(folder: Path, sim_port: int, port: int) -> asyncio.subprocess.Process:
    with (folder / "sim.log").open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(sim_port),
            "--stores",
            "4",
            "--staff-per-store",
            "10",
            "--clients",
            "400",
            "--partner-key",
            PARTNER,
            "--merchant-key",
            MERCHANT,
            "--webhook-url",
            f"http://127.0.0.1:{port}/webhooks/booxi",
            "--webhook-secret",
            SECRET,
            "--signing-secret",
            SIGNING,
            "--no-rate-limit",
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=clean_env(),
        )
    assert process.stdout is not None
    for _ in range(50):
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if b"listening on" in line:
            return process
        if not line:
            break
    raise SystemExit(f"the simulator did not start; see {folder / 'sim.log'}")


async def sync_once(config: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "--config",
        str(config),
        "sync",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=clean_env(),
    )
    out, _ = await asyncio.wait_for(process.communicate(), 300)
    if process.returncode != 0:
        raise SystemExit(f"booxi-mirror sync failed: {out.decode()}")
    return out.decode().strip()


@dataclasses.dataclass
class Data:
    """Ids to read, and bookings to send updates of, taken from the filled mirror."""

    staff: list[int]
    merchants: list[int]
    bookings: list[str]
    clients: list[int]
    updatable: list[dict]

    @classmethod
    def load(cls, db_path: Path) -> Data:
        now = dt.datetime.now(dt.UTC)
        lo, hi = (
            (now - dt.timedelta(days=6)).strftime(FMT),
            (now + dt.timedelta(days=29)).strftime(FMT),
        )
        with sqlite3.connect(db_path) as db:
            staff = [r[0] for r in db.execute("SELECT id FROM staff ORDER BY id")]
            merchants = [r[0] for r in db.execute("SELECT id FROM merchant ORDER BY id")]
            bookings = [r[0] for r in db.execute("SELECT booking_id FROM booking")]
            clients = [
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT client_id FROM booking WHERE client_id IS NOT NULL"
                )
            ]
            updatable = [
                json.loads(r[0])
                for r in db.execute(
                    "SELECT raw FROM booking WHERE method = 'Appointment' AND status != 'Cancelled'"
                    " AND starts_on BETWEEN ? AND ?",
                    (lo, hi),
                )
            ]
        if not (staff and merchants and bookings and clients and updatable):
            raise SystemExit("the mirror holds too little after the sync")
        return cls(staff, merchants, bookings, clients, updatable)


@dataclasses.dataclass
class Stats:
    latencies: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list)
    )
    not_found: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    failures: collections.Counter[tuple[str, str]] = dataclasses.field(
        default_factory=collections.Counter
    )


def read_url(route: str, data: Data, rng: random.Random) -> str:
    b = "/booking/v1"
    if route == "calendar":
        start = dt.datetime.now(dt.UTC) + dt.timedelta(days=rng.randrange(-5, 20))
        return (
            f"{b}/calendar?staffId={rng.choice(data.staff)}&from={start.strftime(FMT)}"
            f"&to={(start + dt.timedelta(days=7)).strftime(FMT)}&eventType=Appointment"
            "&eventType=GroupEvent&eventType=TimeSlot&include=Appointment&include=GroupEvent"
            "&include=TimeSlot&include=Staff&include=Service"
        )
    if route == "booking-history":
        return f"{b}/booking?clientId={rng.choice(data.clients)}"
    if route == "booking":
        return f"{b}/booking/{rng.choice(data.bookings)}"
    if route == "client":
        return f"{b}/client/{rng.choice(data.clients)}"
    return f"{b}/staff/list?merchantId={rng.choice(data.merchants)}"


async def timed(
    stats: Stats,
    route: str,
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    **options: Any,
) -> None:
    """Makes one request and records its outcome under ``route``."""
    began = time.perf_counter()
    try:
        async with session.request(method, url, **options) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        stats.failures[(route, type(error).__name__)] += 1
        return
    stats.latencies[route].append(time.perf_counter() - began)
    if status == 404 and route != "webhook":
        stats.not_found[route] += 1
    elif not 200 <= status < 300:
        stats.failures[(route, f"HTTP {status}")] += 1


async def soak(
    base: str, sim: str, data: Data, seconds: float, concurrency: int, rate: float, pid: int
) -> tuple[Stats, list[tuple[float, float]], list[tuple[float, float]], float, int]:
    """The mixed load; its stats, the RSS samples ``(seconds, MB)`` (whole, and anonymous
    less the ready answers held), the elapsed time and how many webhook sends had to
    wait for a free slot (the server falling behind)."""
    stats = Stats()
    stop = asyncio.Event()
    rng = random.Random(1)
    routes = [route for route, _ in READS]
    weights = [weight for _, weight in READS]
    signer = Webhook(SIGNING)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    samples: list[tuple[float, float]] = []
    anon: list[tuple[float, float]] = []
    ready: list[tuple[float, float]] = []
    waited = 0
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def reader(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            route = rng.choices(routes, weights)[0]
            url = base + read_url(route, data, rng)
            await timed(stats, route, session, "GET", url, headers=headers)

    async def webhooks(session: aiohttp.ClientSession) -> None:
        nonlocal waited
        slots = asyncio.Semaphore(MAX_WEBHOOKS_IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()
        index = 0
        while not stop.is_set():
            delay = started + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if slots.locked():
                waited += 1
            await slots.acquire()
            task = asyncio.create_task(send(session, index))
            task.add_done_callback(lambda _t: slots.release())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        await asyncio.gather(*tasks)

    async def send(session: aiohttp.ClientSession, index: int) -> None:
        now = dt.datetime.now(dt.UTC)
        booking = dict(rng.choice(data.updatable))
        booking["modifiedOn"] = now.strftime(FMT)
        booking["quickNote"] = f"soak {index}"
        event_id = f"soak-{index}"
        body = json.dumps(
            {
                "eventId": event_id,
                "eventType": "appointment.updated",
                "createdOn": now.strftime(FMT),
                "content": {"booking": booking, "clientLinks": []},
            }
        )
        head = {
            "Authorization": f"Bearer {SECRET}",
            "Content-Type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(event_id, now, body),
        }
        url = f"{base}/webhooks/booxi"
        await timed(stats, "webhook", session, "POST", url, data=body.encode(), headers=head)

    async def mutations(session: aiohttp.ClientSession) -> None:
        seed = 0
        while not stop.is_set():
            url = f"{sim}/_sim/mutate"
            await timed(stats, "sim-mutate", session, "POST", url, json={"count": 2, "seed": seed})
            seed += 1
            await asyncio.sleep(1)

    async def sample_rss() -> None:
        async with aiohttp.ClientSession() as metrics:
            while not stop.is_set():
                at = loop.time() - started
                samples.append((at, rss_mb(pid)))
                anon.append((at, anon_rss_mb(pid)))
                ready.append((at, await _ready_mb(metrics, base)))
                await asyncio.sleep(1)

    async def progress() -> None:
        while not stop.is_set():
            await asyncio.sleep(10)
            done = sum(len(v) for v in stats.latencies.values())
            failed = sum(stats.failures.values())
            rss = samples[-1][1] if samples else 0.0
            print(
                f"  {loop.time() - started:4.0f} s: {done:,} requests, {failed} failures, "
                f"RSS {rss:.0f} MB",
                flush=True,
            )

    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout
        ) as reads,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64), timeout=timeout) as hooks,
    ):
        tasks = [asyncio.create_task(reader(reads)) for _ in range(concurrency)]
        tasks += [
            asyncio.create_task(webhooks(hooks)),
            asyncio.create_task(mutations(hooks)),
            asyncio.create_task(sample_rss()),
            asyncio.create_task(progress()),
        ]
        await asyncio.sleep(seconds)
        stop.set()
        elapsed = loop.time() - started
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    print(
        f"anonymous RSS {anon[0][1]:.1f} -> {anon[-1][1]:.1f} MB, of which ready answers "
        f"{ready[0][1]:.1f} -> {ready[-1][1]:.1f} MB",
        flush=True,
    )
    own = [(t, a - r) for (t, a), (_, r) in zip(anon, ready, strict=True)]
    return stats, samples, own, elapsed, waited


@dataclasses.dataclass
class Flood:
    rss_before: float
    rss_peak: float
    rss_after: float
    anon_before: float  # RssAnon: what the verdict reads (see ``run``)
    anon_peak: float
    anon_after: float
    opened: int
    timed_out_408: int
    closed_silently: int
    idle_closed: int
    still_open: int
    header_closes: list[float]
    idle_closes: list[float]
    all_closed_s: float


async def flood(port: int, pid: int, half_open: int, idle: int) -> Flood:
    """``half_open`` connections that send part of a request head, and ``idle`` that send
    one request, read the answer and go quiet; until the server closes every one."""
    loop = asyncio.get_running_loop()
    connecting = asyncio.Semaphore(200)  # at most this many handshakes at once
    outcomes: collections.Counter[str] = collections.Counter()
    header_closes: list[float] = []
    idle_closes: list[float] = []
    rss_before, anon_before = rss_mb(pid), anon_rss_mb(pid)
    peak, anon_peak = rss_before, anon_before
    limit = HEADER_TIMEOUT_S + KEEPALIVE_TIMEOUT_S + 30
    done = asyncio.Event()

    async def half() -> None:
        async with connecting:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: soak-flo")
            await writer.drain()
            began = loop.time()
        try:
            answer = await asyncio.wait_for(reader.read(), limit)
            header_closes.append(loop.time() - began)
            outcomes["408" if answer.startswith(b"HTTP/1.1 408") else "silent"] += 1
        except TimeoutError:
            outcomes["open"] += 1
        finally:
            writer.close()

    async def quiet() -> None:
        async with connecting:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            answered = loop.time()
        try:
            rest = await asyncio.wait_for(reader.read(), limit)
            idle_closes.append(loop.time() - answered)
            outcomes["idle-closed" if not rest else "idle-unexpected"] += 1
        except TimeoutError:
            outcomes["open"] += 1
        finally:
            writer.close()

    async def sample() -> None:
        nonlocal peak, anon_peak
        while not done.is_set():
            peak, anon_peak = max(peak, rss_mb(pid)), max(anon_peak, anon_rss_mb(pid))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    began = loop.time()
    kinds = [half] * half_open + [quiet] * idle
    random.Random(2).shuffle(kinds)
    results = await asyncio.gather(*(kind() for kind in kinds), return_exceptions=True)
    all_closed = loop.time() - began
    errors = [r for r in results if isinstance(r, BaseException)]
    done.set()
    await sampler
    await asyncio.sleep(2)  # let the server finish closing and collecting
    rss_after, anon_after = rss_mb(pid), anon_rss_mb(pid)
    if errors:
        print(f"  flood: {len(errors)} connections failed: {errors[:3]}")
    return Flood(
        rss_before=rss_before,
        rss_peak=peak,
        rss_after=rss_after,
        anon_before=anon_before,
        anon_peak=anon_peak,
        anon_after=anon_after,
        opened=half_open + idle - len(errors),
        timed_out_408=outcomes["408"],
        closed_silently=outcomes["silent"],
        idle_closed=outcomes["idle-closed"],
        still_open=outcomes["open"] + outcomes["idle-unexpected"],
        header_closes=header_closes,
        idle_closes=idle_closes,
        all_closed_s=all_closed,
    )


async def _ready_mb(session: aiohttp.ClientSession, base: str) -> float:
    """Megabytes of ready answers serve holds (``booxi_mirror_ready_bytes``): a cache
    bounded by ``[api] ready_answers_mb`` that fills as reads come, not a leak."""
    async with session.get(base + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("booxi_mirror_ready_bytes "):
            return float(line.split()[1]) / 1024 / 1024
    return 0.0


async def warm_up(base: str, data: Data) -> None:
    """Reads each client's history and record once, so the timed part measures the steady
    state: a history's first read fetches two years of it from Booxi (a fill), which is
    the cold start, not the soak."""
    began = time.perf_counter()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    urls = [
        f"{base}/booking/v1/{path}"
        for client in data.clients
        for path in (f"booking?clientId={client}", f"client/{client}")
    ]
    slots = asyncio.Semaphore(8)
    statuses: collections.Counter[int] = collections.Counter()

    async def read(session: aiohttp.ClientSession, url: str) -> None:
        async with slots, session.get(url, headers=headers) as response:
            await response.read()
            statuses[response.status] += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(read(session, url) for url in urls))
    print(
        f"warm-up: {len(urls):,} history and client reads (statuses {dict(statuses)}) "
        f"in {time.perf_counter() - began:.1f} s",
        flush=True,
    )


async def upstream_calls(session: aiohttp.ClientSession, sim: str) -> tuple[int, int, int]:
    """(calendar polls, other calls, non-2xx) the simulator logged since it was cleared."""
    async with session.get(f"{sim}/_sim/requests") as response:
        log = (await response.json())["requests"]
    polls = sum(1 for r in log if r["path"].endswith("/calendar"))
    bad = sum(1 for r in log if not 200 <= r["status"] < 300)
    return polls, len(log) - polls, bad


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


async def run(
    folder: Path, seconds: float, concurrency: int, rate: float, half_open: int, idle: int
) -> None:
    sim_port, port = free_port(), free_port()
    sim_base, base = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    sim = await start_sim(folder, sim_port, port)
    serve = None
    try:
        config = write_config(folder, sim_port, port)
        print(await sync_once(config))
        data = Data.load(folder / "soak.db")
        serve, _ = await start_serve(config, folder / "serve.log")
        async with aiohttp.ClientSession() as control:
            await warm_up(base, data)
            async with control.delete(f"{sim_base}/_sim/requests"):
                pass
            print(
                f"soak: {seconds:.0f} s, reads at {concurrency} connections, {rate:.0f} "
                f"webhooks/s; {len(data.staff)} staff, {len(data.bookings):,} bookings, "
                f"{len(data.clients)} clients; logs in {folder} (removed if the run ends well)",
                flush=True,
            )
            stats, samples, anon, elapsed, waited = await soak(
                base, sim_base, data, seconds, concurrency, rate, serve.pid
            )
            polls, other_calls, upstream_bad = await upstream_calls(control, sim_base)
            async with control.post(f"{sim_base}/_sim/webhooks/drain?timeout=30") as response:
                await response.read()
            async with control.get(f"{sim_base}/_sim/webhooks") as response:
                sim_hooks = (await response.json())["stats"]
            print(f"flood: {half_open:,} half-sent request heads, {idle:,} idle keep-alives")
            await asyncio.sleep(KEEPALIVE_TIMEOUT_S + 1)  # the soak's connections time out
            flooded = await flood(port, serve.pid, half_open, idle)
            async with control.get(f"{base}/livez") as response:
                alive_after = response.status
        serve.send_signal(signal.SIGTERM)
        serve_exit = await asyncio.wait_for(serve.wait(), 60)
        serve = None
    finally:
        if serve is not None:
            serve.kill()
            await serve.wait()
        sim.send_signal(signal.SIGINT)
        await asyncio.wait_for(sim.wait(), 30)
    with sqlite3.connect(folder / "soak.db") as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]

    # ---- the report -------------------------------------------------------------------
    reads = [r for r, _ in READS]
    done = sum(len(stats.latencies[r]) for r in reads)
    failures = sum(stats.failures.values())
    print(f"\n{seconds:.0f} s soak of booxi-mirror serve (SQLite), {elapsed:.1f} s measured\n")
    rows: list[tuple[str, ...]] = []
    for route in [*reads, "webhook"]:
        values = stats.latencies[route]
        failed = sum(n for (r, _), n in stats.failures.items() if r == route)
        rows.append(
            (
                f"GET {route}" if route != "webhook" else "POST /webhooks/booxi",
                f"{len(values):,}",
                f"{len(values) / elapsed:,.0f}/s",
                ms(statistics.median(values)) if values else "-",
                ms(percentile(values, 0.99)) if values else "-",
                f"{stats.not_found[route]}",
                f"{failed}",
            )
        )
    rows.append(("all reads", f"{done:,}", f"{done / elapsed:,.0f}/s", "", "", "", ""))
    print_table(("route", "requests", "rate", "p50", "p99", "404s", "failures"), rows)
    if stats.failures:
        print("failures:", dict(stats.failures))

    hooks = stats.latencies["webhook"]
    ws = len(hooks) / elapsed
    slope_from = seconds / 4
    slope = slope_per_minute([(t, v) for t, v in samples if t >= slope_from])
    anon_slope = slope_per_minute([(t, v) for t, v in anon if t >= slope_from])
    rss = [v for _, v in samples]
    print()
    rows = [
        ("webhook acks/s", f"{ws:,.0f}/s", f"{ws / rate:.2f}", f"{rate:.0f}/s"),
        ("webhook ack p99", ms(percentile(hooks, 0.99)), "", ""),
        ("webhook sends that waited for a slot", f"{waited}", "", "0"),
        (
            "simulator webhooks (mutate) delivered",
            f"{sim_hooks.get('delivered', 0)} of {sim_hooks.get('published', 0)}",
            "",
            "all",
        ),
        (
            "  failed attempts / gave up",
            f"{sim_hooks.get('failed_attempts', 0)} / {sim_hooks.get('gave_up', 0)}",
            "",
            "0 / 0",
        ),
        ("upstream calendar polls", f"{polls:,}", "", ""),
        ("upstream other calls (reference, fills)", f"{other_calls:,}", "", ""),
        ("upstream non-2xx", f"{upstream_bad}", "", "0"),
        ("RSS start", f"{rss[0]:.1f} MB", "1.00", ""),
        ("RSS end", f"{rss[-1]:.1f} MB", f"{rss[-1] / rss[0]:.2f}", ""),
        ("RSS max", f"{max(rss):.1f} MB", f"{max(rss) / rss[0]:.2f}", ""),
        (
            f"RSS slope, last {seconds - slope_from:.0f} s",
            f"{slope:+.2f} MB/min",
            "",
            f"no growth (slope < {FLAT_MB_PER_MIN:.0f})",
        ),
        (
            "  anonymous (RssAnon) less ready answers, start/end",
            f"{anon[0][1]:.1f} / {anon[-1][1]:.1f} MB",
            "",
            "",
        ),
        (
            "  its slope (no mapped database file, no bounded cache)",
            f"{anon_slope:+.2f} MB/min",
            "",
            f"no growth (slope < {FLAT_MB_PER_MIN:.0f})",
        ),
    ]
    print_table(("measure", "value", "ratio", "want"), rows)

    flood_ratio = flooded.rss_after / flooded.rss_before
    print(
        f"\nflood: {flooded.opened:,} connections opened, header_timeout_s {HEADER_TIMEOUT_S:g}, "
        f"keepalive_timeout_s {KEEPALIVE_TIMEOUT_S:g}, max_connections 5000\n"
    )
    rows = [
        (
            "half-sent heads answered 408 and closed",
            f"{flooded.timed_out_408:,}",
            "",
            f"{half_open:,}",
        ),
        ("  closed without 408", f"{flooded.closed_silently:,}", "", "0"),
        (
            "  closed after p50 / max",
            f"{statistics.median(flooded.header_closes):.2f} / {max(flooded.header_closes):.2f} s"
            if flooded.header_closes
            else "-",
            "",
            f"~{HEADER_TIMEOUT_S:g} s",
        ),
        ("idle keep-alives closed", f"{flooded.idle_closed:,}", "", f"{idle:,}"),
        (
            "  closed after p50 / max",
            f"{statistics.median(flooded.idle_closes):.2f} / {max(flooded.idle_closes):.2f} s"
            if flooded.idle_closes
            else "-",
            "",
            f"~{KEEPALIVE_TIMEOUT_S:g} s",
        ),
        ("still open at the end", f"{flooded.still_open}", "", "0"),
        ("all closed within", f"{flooded.all_closed_s:.1f} s", "", ""),
        ("RSS before", f"{flooded.rss_before:.1f} MB", "1.00", ""),
        (
            "RSS peak",
            f"{flooded.rss_peak:.1f} MB",
            f"{flooded.rss_peak / flooded.rss_before:.2f}",
            "",
        ),
        (
            "RSS after",
            f"{flooded.rss_after:.1f} MB",
            f"{flood_ratio:.2f}",
            f"<= {1 + RSS_GROWTH_ALLOWED:.2f}",
        ),
        (
            "  anonymous before / peak / after",
            _before_peak_after(flooded.anon_before, flooded.anon_peak, flooded.anon_after),
            f"{flooded.anon_after / flooded.anon_before:.2f}",
            "",
        ),
        ("GET /livez after the flood", f"{alive_after}", "", "200"),
    ]
    print_table(("measure", "value", "ratio", "want"), rows)
    print(f"\nserve exit on SIGTERM: {serve_exit}; integrity_check: {integrity}")

    problems = []
    if failures:
        problems.append(f"{failures} failed requests")
    if ws < rate * 0.95:
        problems.append(f"webhooks acknowledged at {ws:.0f}/s, under {rate:.0f}/s")
    if sim_hooks.get("gave_up", 0) or sim_hooks.get("failed_attempts", 0):
        problems.append("simulator webhooks failed")
    if upstream_bad:
        problems.append(f"{upstream_bad} upstream non-2xx")
    # the verdict reads the anonymous part less the ready answers held: the database file
    # the reader maps (mmap_size) counts in VmRSS as reads touch it, and the ready answers
    # fill up to [api] ready_answers_mb; both are bounded and neither is a leak. Only
    # growth fails: memory handed back to the system (a falling slope) is no leak
    if anon_slope >= FLAT_MB_PER_MIN:
        problems.append(f"anonymous RSS slope {anon_slope:+.2f} MB/min")
    if flood_ratio > 1 + RSS_GROWTH_ALLOWED:
        problems.append(f"RSS after the flood {flood_ratio:.2f}x before")
    if flooded.still_open or flooded.closed_silently or flooded.opened != half_open + idle:
        problems.append("flood connections not closed as configured")
    if alive_after != 200 or serve_exit != 0 or integrity != "ok":
        problems.append("serve unhealthy after the flood")
    print(f"verdict: {'PASS' if not problems else 'FAIL: ' + '; '.join(problems)}")
    if problems:
        raise SystemExit(1)


def _before_peak_after(before: float, peak: float, after: float) -> str:
    return f"{before:.0f} / {peak:.0f} / {after:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent reads")
    parser.add_argument("--webhooks", type=float, default=200, help="webhook events per second")
    parser.add_argument("--half-open", type=int, default=2000, help="half-sent request heads")
    parser.add_argument("--idle", type=int, default=2000, help="idle keep-alive connections")
    parser.add_argument(
        "--ready-answers-mb", type=float, default=DEFAULT_READY_ANSWERS_MB, help="0: no cache"
    )
    args = parser.parse_args()
    if not 1 <= args.seconds <= 3600:
        parser.error("--seconds must be from 1 to 3600")
    global READY_ANSWERS_MB
    READY_ANSWERS_MB = args.ready_answers_mb
    with work_folder("booxi-soak-") as folder:
        asyncio.run(
            run(folder, args.seconds, args.concurrency, args.webhooks, args.half_open, args.idle)
        )


if __name__ == "__main__":
    main()
