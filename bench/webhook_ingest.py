"""Benchmark: webhook ingestion by a real ``booxi-mirror serve`` process.

Measures how many webhook events per second the mirror acknowledges (each one stored
in the inbox and applied, committed to SQLite, before its 2xx), the latency of those
acknowledgements, and how long after a 2xx the API answers with what the event
changed. Compares with the HTTP ceiling (``GET /livez`` on the same
server, which answers without touching anything) and with the targets of issue #3
(1,000 events/s; p99 readable within 100 ms) and #11 (1,500 events/s beside reads).

With ``--readers N``, N more connections read through the API meanwhile:
``GET /booking/v1/booking/{id}`` of a booking acknowledged so far, at random (the ready
answers dropped and rebuilt as webhooks update them); their rate and p99 are printed
too. By default each reader reads again as soon as it has its answer (a closed loop: the
most reading the server gives, taking its share of the one event loop from the
webhooks); with ``--read-rate R`` the readers together start R reads a second on a fixed
schedule (an open loop, like tablets refreshing on a timer), each read's latency counted
from when it was due, so that a slow server is not excused by reads it delayed.

Webhook to read: every 20th event, once acknowledged, is read back through the API
(``GET /booking/v1/booking/{id}``) until the answer shows that event's ``modifiedOn``;
the time from the 2xx to that answer is the "2xx to read through the API" row. A ready
answer is dropped before the 2xx (``api.ready``), so this is one read, not a wait.

    .venv/bin/python -m bench.webhook_ingest [--events 5000] [--concurrency 64] [--signed]
        [--readers 8 [--read-rate 300]]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import aiohttp
from standardwebhooks.webhooks import Webhook

from bench.common import work_folder

SECRET = "bench-webhook-secret-0123456789"
API_KEY = "bench-api-key-0123456789"
SIGNING = "whsec_" + base64.b64encode(b"bench signing secret of 32 bytes").decode()
TARGET_EVENTS_PER_S = 1000
TARGET_WITH_READS = 1500  # issue #11: acknowledged events/s while reads run
PROFILE = (
    ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
)
TARGET_P99_VISIBLE_MS = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def event(index: int, *, update: bool) -> dict:
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=30 * index)
    stamp = dt.datetime(2029, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=index * 2 + update)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    booking_id = f"B{index // 2 if update else index:08d}"
    return {
        "eventId": f"bench-{index}-{int(update)}",
        "eventType": "appointment.updated" if update else "appointment.created",
        "createdOn": stamp.strftime(fmt),
        "content": {
            "booking": {
                "bookingId": booking_id,
                "merchantId": 34497,
                "bookingMethod": "Appointment",
                "status": "Approved",
                "isCompleted": False,
                "startsOn": start.strftime(fmt),
                "totalClientTimespan": {
                    "start": start.strftime(fmt),
                    "end": (start + dt.timedelta(minutes=30)).strftime(fmt),
                    "duration": 30,
                },
                "staffId": 21750 + index % 50,
                "staffFirstName": "Maya",
                "staffLastName": "Ortiz",
                "items": [
                    {
                        "serviceId": 154023,
                        "serviceName": "Personal styling",
                        "price": {},
                        "reservedClientTimespan": {
                            "start": start.strftime(fmt),
                            "end": (start + dt.timedelta(minutes=30)).strftime(fmt),
                            "duration": 30,
                        },
                        "duration": 30,
                        "spacingAfter": 0,
                        "isBusySpacingAfter": True,
                    }
                ],
                "location": "Business",
                "locationText": "",
                "payment": {"total": "0.00", "paid": "0.00", "onlinePaymentStatus": "None"},
                "createdOn": stamp.strftime(fmt),
                "createdBy": "Client",
                "modifiedOn": stamp.strftime(fmt),
                "modifiedBy": "Client",
                "isScheduled": True,
                "clientCount": 1,
                "client": {
                    "id": 10000 + index % 500,
                    "firstName": "Bench",
                    "lastName": "Client",
                    "email": f"bench{index % 500}@example.org",
                    "homePhoneNumber": "",
                    "mobilePhoneNumber": "",
                    "presence": "Expecting",
                    "remindByEmail": True,
                    "remindBySMS": False,
                    "additionalRequest": "",
                },
                "quickNote": "",
            },
            "clientLinks": [
                {
                    "clientId": 10000 + index % 500,
                    "moduleId": "crm",
                    "externalId": f"C-{index % 500}",
                    "createdOn": stamp.strftime(fmt),
                    "modifiedOn": stamp.strftime(fmt),
                }
            ],
        },
    }


def write_config(folder: Path, port: int, signed: bool) -> Path:
    path = folder / "config.toml"
    signing = f'signing_secret = "{SIGNING}"\n' if signed else ""
    path.write_text(
        '[booxi]\nbase_url = "http://127.0.0.1:9/booking/v1"\npartner_key = "unused"\n'
        f'[storage]\nurl = "sqlite+aiosqlite:///{folder / "bench.db"}"\n'
        "[sync]\ncalendar_interval_s = 86400\nreference_interval_s = 86400\n"
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nstaleness_s = 86400\n'
        f'[[api.keys]]\nname = "bench"\nkey = "{API_KEY}"\n'
        f'[webhook]\nsecret = "{SECRET}"\n{signing}'
    )
    return path


async def start_mirror(config: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOXI_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *PROFILE,
        "-m",
        "cli",
        "--config",
        str(config),
        "serve",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if b"serving on" not in line:
        raise SystemExit(f"the mirror did not start: {line!r}")
    return process


async def read_back(
    session: aiohttp.ClientSession, base: str, booking_id: str, modified_on: str
) -> None:
    """Read the booking through the API until it shows ``modified_on``; at most 10 s."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        async with session.get(f"{base}/booking/v1/booking/{booking_id}", headers=headers) as got:
            if got.status == 200:
                answer = await got.json()
                if answer["booking"]["modifiedOn"] == modified_on:
                    return
            else:
                await got.read()
        await asyncio.sleep(0.001)
    raise SystemExit(f"booking {booking_id} as of {modified_on} never readable through the API")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def measure_ceiling(base: str, requests: int, concurrency: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        pending = iter(range(requests))

        async def worker() -> None:
            for _ in pending:
                async with s.get(f"{base}/livez") as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


async def read_loop(
    session: aiohttp.ClientSession,
    base: str,
    acked: list[str],
    done: asyncio.Event,
    latencies: list[float],
    seed: int,
    period: float | None,
) -> None:
    """One reader: a random acknowledged booking through the API, again and again; with
    ``period``, one read due every ``period`` seconds (latency counted from when due)."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    due = time.perf_counter() + (period or 0) * rng.random()
    while not done.is_set():
        if not acked:
            await asyncio.sleep(0.01)
            due = time.perf_counter()
            continue
        if period is not None:
            due += period
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            began = due
        else:
            began = time.perf_counter()
        path = f"{base}/booking/v1/booking/{rng.choice(acked)}"
        async with session.get(path, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"GET {path}: HTTP {response.status}")
        latencies.append(time.perf_counter() - began)


async def run(
    folder: Path,
    events: int,
    concurrency: int,
    signed: bool,
    readers: int,
    read_rate: float | None,
) -> None:
    port = free_port()
    process = await start_mirror(write_config(folder, port, signed))
    base = f"http://127.0.0.1:{port}"
    signer = Webhook(SIGNING) if signed else None
    bodies = [json.dumps(event(i, update=i % 4 == 3)).encode() for i in range(events)]
    latencies: list[float] = []
    visible: list[float] = []
    reads: list[float] = []
    acked_ids: list[str] = []
    writing_done = asyncio.Event()
    read_seconds = 0.0
    try:
        ceiling = await measure_ceiling(base, 3000, concurrency)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency)
        ) as session:

            async def send(index: int) -> None:
                headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
                body = bodies[index]
                if signer is not None:
                    now = dt.datetime.now(dt.UTC)
                    event_id = f"bench-{index}"
                    headers |= {
                        "webhook-id": event_id,
                        "webhook-timestamp": str(int(now.timestamp())),
                        "webhook-signature": signer.sign(event_id, now, body.decode()),
                    }
                began = time.perf_counter()
                async with session.post(
                    f"{base}/webhooks/booxi", data=body, headers=headers
                ) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"event {index}: HTTP {response.status}")
                acked = time.perf_counter()
                latencies.append(acked - began)
                booking = json.loads(body)["content"]["booking"]
                acked_ids.append(booking["bookingId"])
                if index % 20 == 0:  # read back through the API: how soon does it show?
                    await read_back(session, base, booking["bookingId"], booking["modifiedOn"])
                    visible.append(time.perf_counter() - acked)

            pending = iter(range(events))

            async def worker() -> None:
                for index in pending:
                    await send(index)

            period = readers / read_rate if read_rate else None
            started = time.perf_counter()
            async with aiohttp.ClientSession(  # connections of their own
                connector=aiohttp.TCPConnector(limit=max(readers, 1))
            ) as reader_session:
                reading = [
                    asyncio.create_task(
                        read_loop(
                            reader_session, base, acked_ids, writing_done, reads, seed, period
                        )
                    )
                    for seed in range(readers)
                ]
                try:
                    await asyncio.gather(*(worker() for _ in range(concurrency)))
                finally:
                    elapsed = time.perf_counter() - started
                    writing_done.set()
                    await asyncio.gather(*reading)
            read_seconds = elapsed
        with contextlib.closing(sqlite3.connect(folder / "bench.db")) as db:
            stored = db.execute("SELECT count(*) FROM inbox_event").fetchone()[0]
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    rate = events / elapsed
    p99_visible = percentile(visible, 0.99) * 1000
    rows = [
        ("HTTP ceiling: GET /livez", f"{ceiling:,.0f} req/s", "1.00", ""),
        (
            "webhooks acknowledged",
            f"{rate:,.0f} events/s",
            f"{rate / ceiling:.2f}",
            f"{rate / TARGET_EVENTS_PER_S:.2f}x the 1,000/s target"
            + (f", {rate / TARGET_WITH_READS:.2f}x #11's 1,500/s with reads" if reads else ""),
        ),
        ("2xx latency p50", f"{statistics.median(latencies) * 1000:.1f} ms", "", ""),
        ("2xx latency p99", f"{percentile(latencies, 0.99) * 1000:.1f} ms", "", ""),
        *(
            [
                (
                    f"reads meanwhile ({readers} connections, "
                    + (f"{read_rate:,.0f}/s due)" if read_rate else "closed loop)"),
                    f"{len(reads) / read_seconds:,.0f} req/s",
                    "",
                    "",
                ),
                ("read latency p99", f"{percentile(reads, 0.99) * 1000:.1f} ms", "", ""),
            ]
            if reads
            else []
        ),
        (
            "2xx to read through the API p99",
            f"{p99_visible:.2f} ms",
            "",
            f"{p99_visible / TARGET_P99_VISIBLE_MS:.3f} of the 100 ms budget",
        ),
    ]
    print(
        f"\n{events} events, {concurrency} concurrent, signature {'on' if signed else 'off'}, "
        f"{stored} stored in the inbox\n"
    )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("measure", "value", "vs ceiling", "vs target")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    if stored != events:
        raise SystemExit(f"{events - stored} acknowledged events missing from the inbox")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--signed", action="store_true", help="add Standard Webhooks signatures")
    parser.add_argument(
        "--readers", type=int, default=0, help="connections reading bookings meanwhile"
    )
    parser.add_argument(
        "--read-rate",
        type=float,
        default=None,
        help="reads started per second by the readers together (default: as fast as answered)",
    )
    args = parser.parse_args()
    if args.read_rate is not None and (args.read_rate <= 0 or args.readers < 1):
        parser.error("--read-rate needs --readers N and a rate above 0")
    with work_folder("booxi-bench-") as folder:
        asyncio.run(
            run(folder, args.events, args.concurrency, args.signed, args.readers, args.read_rate)
        )


if __name__ == "__main__":
    main()
