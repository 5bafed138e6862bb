"""Processes sharing one database, over real sockets: ``serve`` replicas and CLI commands
beside them share one Booxi budget; exactly one replica polls, and another takes over
when it is killed. The simulator limits requests as Booxi does; its request log is the
judge (no 429, at most 5 requests in any second)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import IO

import aiohttp

from tests.conftest import PARTNER_KEY, WEBHOOK_SECRET, Sim, SimFactory, sample


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, sim: Sim, url: str, *, interval: float) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[booxi]\nbase_url = "{sim.api}"\npartner_key = "{PARTNER_KEY}"\n'
        "requests_per_second = 5\nrequests_per_minute = 300\ntimeout_s = 5\n"
        f'[storage]\nurl = "{url}"\n'
        f"[sync]\nhorizon_days = 14\ncalendar_interval_s = {interval}\n"
        'reference_interval_s = 3600\n[api]\nhost = "127.0.0.1"\n'
        f'[webhook]\nsecret = "{WEBHOOK_SECRET}"\n'
    )
    return path


def _env(**overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BOOXI_") and k not in ("COLUMNS", "LINES")
    }
    return {**env, **overrides}


class Serve:
    """One ``booxi-mirror serve`` process; its log goes to a file."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def polls(self) -> bool:
        """Whether this replica says it runs the poller (``booxi_mirror_poll_leader``)."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base + "/metrics") as response,
        ):
            text = await response.text()
        for line in text.splitlines():
            if line.startswith("booxi_mirror_poll_leader "):
                return float(line.split()[1]) == 1.0
        raise AssertionError("no booxi_mirror_poll_leader in /metrics")

    async def readyz_polls(self) -> bool:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base + "/readyz") as response,
        ):
            return bool((await response.json())["checks"]["poller"]["polls"])

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)


async def _start_serve(config: Path, log: Path) -> Serve:
    port = _free_port()
    handle: IO[bytes] = log.open("wb")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "--config",
            str(config),
            "serve",
            stdout=asyncio.subprocess.PIPE,
            stderr=handle,
            env=_env(BOOXI_MIRROR_API__PORT=str(port)),
        )
    finally:
        handle.close()
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    serve = Serve(process, port, log)
    if b"serving on" not in line:
        await asyncio.wait_for(process.wait(), 30)
        raise AssertionError(serve.log_text()[-3000:])
    return serve


async def _run_cli(config: Path, *args: str, within_s: float = 120) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )
    _, stderr = await asyncio.wait_for(process.communicate(), within_s)
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace")


async def _requests(sim: Sim) -> list[dict[str, object]]:
    return list((await sim.control("GET", "/_sim/requests"))["requests"])


def _most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times), default=0)


def _check_fair_use(requests: list[dict[str, object]]) -> None:
    statuses = [entry["status"] for entry in requests]
    assert 429 not in statuses, statuses
    at = [float(str(entry["at"])) for entry in requests]
    assert _most_in_any_second(at) <= 5
    assert _most_in_any_minute(at) <= 300


def _most_in_any_minute(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + 60.0) for start in times), default=0)


async def test_sync_beside_serve_on_sqlite_shares_one_budget(
    tmp_path: Path, make_sim: SimFactory
) -> None:
    sim = await make_sim(rate_limit=True, stores=1, staff_per_store=3, clients=20)
    config = _config(tmp_path, sim, f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}", interval=2)
    serve = await _start_serve(config, tmp_path / "serve.log")
    try:
        assert await serve.polls()  # on SQLite, serve always polls
        code, err = await _run_cli(config, "sync")
        assert code == 0, err[-3000:]
    finally:
        await serve.stop()
    requests = await _requests(sim)
    assert len(requests) > 20  # both were busy: the budget was the limit
    _check_fair_use(requests)
    assert "poll.leader.acquired" in serve.log_text()


async def test_a_replica_takes_over_polling_when_the_leader_is_killed(
    tmp_path: Path, make_sim: SimFactory, postgres_url: str
) -> None:
    interval = 4.0
    sim = await make_sim(rate_limit=True, stores=1, staff_per_store=3, clients=20)
    config = _config(tmp_path, sim, postgres_url, interval=interval)
    first = await _start_serve(config, tmp_path / "first.log")
    second = await _start_serve(config, tmp_path / "second.log")
    replicas = [first, second]
    beside = asyncio.create_task(_run_cli(config, "sync"))  # a CLI command on the budget too
    try:
        polling = [await replica.polls() for replica in replicas]
        assert sorted(polling) == [False, True]
        leader, other = (first, second) if polling[0] else (second, first)
        assert [await replica.readyz_polls() for replica in (leader, other)] == [True, False]
        event = sample("webhook-appointment-created.json")
        event["content"]["booking"]["merchantId"] = next(iter(sim.world.merchants))
        async with (  # the replica that does not poll takes webhooks all the same
            aiohttp.ClientSession() as session,
            session.post(
                other.base + "/webhooks/booxi",
                json=event,
                headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"},
            ) as response,
        ):
            assert (await response.json())["outcome"] == "applied"
        await asyncio.sleep(interval)  # the leader polls a while
        leader.process.send_signal(signal.SIGKILL)
        await leader.process.wait()
        killed_at = time.time()
        async with asyncio.timeout(2 * interval):
            while not await other.polls():  # noqa: ASYNC110 - polled over HTTP
                await asyncio.sleep(0.2)
        took_over_s = time.time() - killed_at
        assert took_over_s < 2 * interval
        assert "poll.leader.acquired" in other.log_text()
        async with asyncio.timeout(30):  # it polls (only since it leads), the budget shared
            while "poll.staff.done" not in other.log_text():  # noqa: ASYNC110 - a log file
                await asyncio.sleep(0.2)
        code, err = await beside
        assert code == 0, err[-3000:]
    finally:
        beside.cancel()
        for replica in replicas:
            await replica.stop()
    _check_fair_use(await _requests(sim))
