"""Benchmark: SIGKILL of a real ``booxi-mirror serve`` during webhook bursts, many times over.

One SQLite file for the whole run. Each round: a burst of webhook events (``--events``,
``--concurrency`` at a time) at the running ``serve``; once a random number of them are
acknowledged, SIGKILL; restart ``serve`` on the same file (timed, from ``exec`` to
listening); then check that every acknowledged event is in the inbox and its booking
stored, and that ``PRAGMA integrity_check`` says ok. Issue "Untrusted input and abuse",
item 8: 0 acknowledged events lost and no integrity failure in 50 rounds (the test suite
does 10, in ``tests/test_cli_mirror.py``).

    .venv/bin/python -m bench.chaos [--rounds 50] [--events 400] [--concurrency 32] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sqlite3
import statistics
import time
from pathlib import Path

import aiohttp

from bench.common import free_port, percentile, print_table, start_serve, work_folder
from bench.webhook_ingest import SECRET, event

ROUND_TIMEOUT_S = 60


def write_config(folder: Path, port: int) -> Path:
    path = folder / "config.toml"
    path.write_text(
        '[booxi]\nbase_url = "http://127.0.0.1:9/booking/v1"\npartner_key = "unused"\n'
        f'[storage]\nurl = "sqlite+aiosqlite:///{folder / "chaos.db"}"\n'
        "[sync]\ncalendar_interval_s = 86400\nreference_interval_s = 86400\n"
        f'[api]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[webhook]\nsecret = "{SECRET}"\n'
    )
    return path


def bodies(round_: int, events: int) -> list[tuple[str, str, bytes]]:
    """(event id, booking id, body) of each event of a round: new bookings, all distinct."""
    out = []
    for index in range(events):
        data = event(index, update=False)
        data["eventId"] = f"chaos-{round_}-{index}"
        data["content"]["booking"]["bookingId"] = f"C{round_:03d}{index:05d}"
        out.append((data["eventId"], data["content"]["booking"]["bookingId"], json.dumps(data)))
    return [(e, b, body.encode()) for e, b, body in out]


async def burst(
    url: str,
    items: list[tuple[str, str, bytes]],
    concurrency: int,
    kill_after: int,
    process: asyncio.subprocess.Process,
) -> list[tuple[str, str]]:
    """Sends every event; SIGKILLs ``process`` at the ``kill_after``-th acknowledgement.
    The (event id, booking id) of each acknowledged (2xx) event."""
    acknowledged: list[tuple[str, str]] = []
    headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=10),
    ) as session:

        async def send(event_id: str, booking_id: str, body: bytes) -> None:
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if not 200 <= response.status < 300:
                        return
            except (aiohttp.ClientError, TimeoutError):
                return  # died under this request, or refused: not acknowledged
            acknowledged.append((event_id, booking_id))
            if len(acknowledged) == kill_after:
                process.kill()

        await asyncio.gather(*(send(*item) for item in items))
    if process.returncode is None and len(acknowledged) < kill_after:
        process.kill()
        raise SystemExit(f"only {len(acknowledged)} of the burst acknowledged: the kill never came")
    return acknowledged


async def run(folder: Path, rounds: int, events: int, concurrency: int, seed: int) -> None:
    port = free_port()
    config = write_config(folder, port)
    log = folder / "serve.log"
    db_path = folder / "chaos.db"
    url = f"http://127.0.0.1:{port}/webhooks/booxi"
    rng = random.Random(seed)
    process, first_start = await start_serve(config, log)
    restarts: list[float] = []
    acknowledged_total = lost = integrity_failures = stored_unacknowledged = 0
    lost_ids: list[str] = []
    started = time.perf_counter()
    try:
        for round_ in range(rounds):
            items = bodies(round_, events)
            kill_after = rng.randrange(1, max(2, events * 3 // 5))
            acked = await asyncio.wait_for(
                burst(url, items, concurrency, kill_after, process), ROUND_TIMEOUT_S
            )
            code = await asyncio.wait_for(process.wait(), ROUND_TIMEOUT_S)
            if code != -signal.SIGKILL:
                raise SystemExit(f"round {round_}: serve ended with {code}, not SIGKILL")
            process, took = await start_serve(config, log)  # on the same file
            restarts.append(took)
            with sqlite3.connect(db_path) as db:
                if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    integrity_failures += 1
                inbox = {
                    row[0]
                    for row in db.execute(
                        "SELECT event_id FROM inbox_event WHERE event_id LIKE ?",
                        (f"chaos-{round_}-%",),
                    )
                }
                booked = {
                    row[0]
                    for row in db.execute(
                        "SELECT booking_id FROM booking WHERE booking_id LIKE ?",
                        (f"C{round_:03d}%",),
                    )
                }
            missing = [e for e, b in acked if e not in inbox or b not in booked]
            lost += len(missing)
            lost_ids += missing
            acknowledged_total += len(acked)
            stored_unacknowledged += len(inbox - {e for e, _ in acked})
            print(
                f"round {round_ + 1:>3}/{rounds}: killed after {len(acked):>3} acknowledged, "
                f"{len(missing)} lost, restarted in {took:.2f} s",
                flush=True,
            )
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    elapsed = time.perf_counter() - started
    sent = rounds * events
    p50, p99 = statistics.median(restarts), percentile(restarts, 0.99)
    rows = [
        ("rounds (SIGKILL, restart)", f"{rounds}", "", ""),
        ("events sent", f"{sent:,}", "", ""),
        ("acknowledged (2xx)", f"{acknowledged_total:,}", f"{acknowledged_total / sent:.2f}", ""),
        ("  in the inbox, not acknowledged", f"{stored_unacknowledged:,}", "", "allowed"),
        ("lost (acknowledged, not stored)", f"{lost}", f"{lost / acknowledged_total:.3f}", "0"),
        ("integrity_check failures", f"{integrity_failures}", "", "0"),
        ("first start (clean)", f"{first_start:.2f} s", "1.00", ""),
        ("restart after SIGKILL p50", f"{p50:.2f} s", f"{p50 / first_start:.2f}", ""),
        ("restart after SIGKILL p99", f"{p99:.2f} s", f"{p99 / first_start:.2f}", ""),
    ]
    print(
        f"\n{rounds} rounds in {elapsed:.0f} s, seed {seed}: a burst of {events} webhook events "
        f"({concurrency} concurrent), SIGKILL at a random acknowledgement, restart on the "
        "same SQLite file\n"
    )
    print_table(("measure", "value", "ratio", "want"), rows)
    ok = lost == 0 and integrity_failures == 0
    print(f"\nverdict: {'PASS' if ok else 'FAIL'} ({lost} lost, {integrity_failures} corrupt)")
    if not ok:
        raise SystemExit(f"lost: {lost_ids[:20]}; serve's log: {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--events", type=int, default=400, help="events per burst")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=None, help="of the kill points")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    with work_folder("booxi-chaos-") as folder:
        asyncio.run(run(folder, args.rounds, args.events, args.concurrency, seed))


if __name__ == "__main__":
    main()
