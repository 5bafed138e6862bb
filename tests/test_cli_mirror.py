"""``db upgrade``, ``sync`` and ``serve`` as an operator runs them: real processes, a real
SQLite file, the simulator on loopback; including being killed mid-work."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import aiohttp

from storage.migrate import head_revision
from tests.conftest import PARTNER_KEY, WEBHOOK_SECRET, Sim, cli_env, sample


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(
    tmp_path: Path, sim: Sim | None, *, port: int = 0, interval: int = 300, url: str = ""
) -> Path:
    path = tmp_path / "config.toml"
    base = sim.api if sim else "http://127.0.0.1:9/booking/v1"
    url = url or f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}"
    path.write_text(
        f'[booxi]\nbase_url = "{base}"\npartner_key = "{PARTNER_KEY}"\n'
        f"requests_per_second = 200\nrequests_per_minute = 10000\ntimeout_s = 2\n"
        f'[storage]\nurl = "{url}"\n'
        f"[sync]\nhorizon_days = 30\ncalendar_interval_s = {interval}\n"
        f'[api]\nhost = "127.0.0.1"\nport = {port or 8080}\n'
        f'[webhook]\nsecret = "{WEBHOOK_SECRET}"\n'
    )
    return path


async def _run(*args: str, within_s: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), within_s)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def _integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def _start_serve(config: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "--config",
        str(config),
        "serve",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert b"serving on" in line, line
    return process


async def test_db_upgrade_creates_the_schema_once(tmp_path: Path) -> None:
    config = _config(tmp_path, None)
    for _ in range(2):
        code, out, err = await _run("--config", str(config), "db", "upgrade")
        assert code == 0, err
        assert out.strip() == f"database at revision {head_revision()}"
    with sqlite3.connect(tmp_path / "mirror.db") as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert {
        "booking",
        "calendar_event",
        "inbox_event",
        "sync_state",
        "client",
        "module_link",
        "alembic_version",
    } <= tables


async def test_sync_runs_one_pass_with_progress(sim: Sim, tmp_path: Path) -> None:
    config = _config(tmp_path, sim)
    code, out, err = await _run("--config", str(config), "sync")
    assert code == 0, err
    assert "synced 2 store(s), 6 of 6 staff calendar(s)" in out
    assert "staff calendars" in err  # the progress bar
    with sqlite3.connect(tmp_path / "mirror.db") as conn:
        assert conn.execute("SELECT count(*) FROM booking").fetchone()[0] > 100
    staff_id = next(iter(sim.world.staff))
    code, out, err = await _run("--config", str(config), "sync", "--staff", str(staff_id))
    assert code == 0, err
    assert "1 of 1 staff calendar(s)" in out


async def test_sync_reports_failures_and_exits_non_zero(sim: Sim, tmp_path: Path) -> None:
    config = _config(tmp_path, sim)
    assert (await _run("--config", str(config), "sync"))[0] == 0
    await sim.control("POST", "/_sim/faults", {"outage": True})
    code, out, err = await _run("--config", str(config), "sync")
    assert code == 1
    assert err.count("BooxiUnavailable") >= 6
    assert "Traceback" not in err
    assert PARTNER_KEY not in out + err


async def test_sync_without_partner_key_is_one_error_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "m.db"}"\n')
    code, out, err = await _run("--config", str(config), "sync")
    assert code == 1
    assert err.strip().splitlines() == [err.strip().splitlines()[0]]
    assert "partner_key" in err and "Traceback" not in err


async def test_serve_receives_webhooks_polls_and_stops_gracefully(sim: Sim, tmp_path: Path) -> None:
    port = _free_port()
    process = await _start_serve(_config(tmp_path, sim, port=port))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
            event = sample("webhook-appointment-created.json")
            # a store the mirror serves (one of Booxi's): another store's event is ignored
            event["content"]["booking"]["merchantId"] = next(iter(sim.world.merchants))
            async with session.post(
                f"{base}/webhooks/booxi",
                json=event,
                headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"},
            ) as r:
                assert (await r.json())["outcome"] == "applied"
        for _ in range(100):  # the poller's first staff polls come right after start
            with sqlite3.connect(tmp_path / "mirror.db") as conn:
                polled = conn.execute(
                    "SELECT count(*) FROM sync_state WHERE kind = 'staff' "
                    "AND last_success_at IS NOT NULL"
                ).fetchone()[0]
            if polled:
                break
            await asyncio.sleep(0.1)
        assert polled
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b"serve.stopped" in stderr
    assert PARTNER_KEY.encode() not in stderr and WEBHOOK_SECRET.encode() not in stderr
    assert _integrity(tmp_path / "mirror.db") == "ok"


# ``serve`` forked from one warm interpreter: the same ``booxi-mirror serve`` code path in a
# process of its own (own database connections, opened after the fork), without paying
# the ~1-2 s of imports on each of the kill test's 11 starts. The parent reads commands
# on stdin: a line of arguments starts a child ("pid N"), "reap N" waits for one
# ("status <exit code>", negative for a signal).
_WARM_SERVE = """
import os, shlex, sys
import api.app, cli.serving
from cli.main import cli
for line in sys.stdin:
    if line.startswith("reap "):
        _, status = os.waitpid(int(line.split()[1]), 0)
        print(f"status {os.waitstatus_to_exitcode(status)}", flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        code = 1
        try:
            cli.main(args=shlex.split(line), prog_name="booxi-mirror")
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        finally:
            sys.stdout.flush()
            os._exit(code)
    print(f"pid {pid}", flush=True)
"""


class _WarmServe:
    """Starts ``booxi-mirror serve`` processes quickly (see ``_WARM_SERVE``)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._children: set[int] = set()  # started and not yet reaped

    @classmethod
    async def open(cls, log: Path) -> _WarmServe:
        with log.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _WARM_SERVE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=cli_env(),
            )
        return cls(process)

    async def _line(self) -> str:
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 30)
        assert line, "the warm interpreter died"
        return line.decode().strip()

    async def serve(self, config: Path) -> int:
        """Starts ``serve`` on ``config``; its pid once it listens."""
        assert self._process.stdin is not None
        self._process.stdin.write(f"--config {config} serve\n".encode())
        pid, listening = 0, False
        while not (pid and listening):  # the two lines may come in either order
            line = await self._line()
            if line.startswith("pid "):
                pid = int(line.split()[1])
                self._children.add(pid)
            else:
                assert "serving on" in line, line
                listening = True
        return pid

    async def reap(self, pid: int) -> int:
        """Waits for the process to end; its exit code (``-signal`` if killed)."""
        assert self._process.stdin is not None
        self._process.stdin.write(f"reap {pid}\n".encode())
        line = await self._line()
        assert line.startswith("status "), line
        self._children.discard(pid)
        return int(line.split()[1])

    async def close(self) -> None:
        """Kills what is still running (a failed test), then ends the warm interpreter."""
        for pid in list(self._children):
            os.kill(pid, signal.SIGKILL)
            await self.reap(pid)
        assert self._process.stdin is not None
        self._process.stdin.close()
        await asyncio.wait_for(self._process.wait(), 30)


async def _burst_until_killed(
    url: str, round_: int, events: int, kill_after: int, pid: int
) -> list[str]:
    """Sends ``events`` webhook events, 32 at a time; SIGKILLs ``pid`` once ``kill_after``
    of them are acknowledged. Returns the ids of the acknowledged ones."""
    template = sample("webhook-appointment-created.json")
    acknowledged: list[str] = []

    async def send(session: aiohttp.ClientSession, index: int) -> None:
        event = json.loads(json.dumps(template))
        event["eventId"] = f"r{round_}-{index}"
        event["content"]["booking"]["bookingId"] = f"B{round_:02d}{index:05d}"
        try:
            async with session.post(
                url, json=event, headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"}
            ) as r:
                await r.read()
                if r.status != 200:
                    return
        except aiohttp.ClientError:
            return  # the process died under this request: not acknowledged
        acknowledged.append(event["eventId"])
        if len(acknowledged) == kill_after:
            os.kill(pid, signal.SIGKILL)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        await asyncio.gather(*(send(session, i) for i in range(events)))
    return acknowledged


async def test_sigkill_during_a_webhook_burst_loses_no_acknowledged_event(tmp_path: Path) -> None:
    """Ten times on one database: a burst of webhooks, SIGKILL at a random point of it,
    restart; every acknowledged event is in the inbox (and its booking stored) after the
    restart, and ``PRAGMA integrity_check`` is ok. (``bench.chaos``: the same, 50 times,
    with real process starts.)"""
    port = _free_port()
    config = _config(tmp_path, None, port=port, interval=3600)
    url = f"http://127.0.0.1:{port}/webhooks/booxi"
    db = tmp_path / "mirror.db"
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    warm = await _WarmServe.open(tmp_path / "serve.log")
    try:
        pid = await warm.serve(config)
        for round_ in range(10):
            kill_after = rng.randrange(1, 250)
            acknowledged = await _burst_until_killed(url, round_, 400, kill_after, pid)
            where = f"round {round_}, seed {seed}"
            assert kill_after <= len(acknowledged) < 400, where
            assert await warm.reap(pid) == -signal.SIGKILL, where
            pid = await warm.serve(config)  # resumes on the same file
            assert _integrity(db) == "ok", where
            with sqlite3.connect(db) as conn:
                stored = {row[0] for row in conn.execute("SELECT event_id FROM inbox_event")}
                bookings = {row[0] for row in conn.execute("SELECT booking_id FROM booking")}
            assert set(acknowledged) <= stored, (where, sorted(set(acknowledged) - stored))
            booked = {f"B{round_:02d}{int(e.split('-')[1]):05d}" for e in acknowledged}
            assert booked <= bookings, where
        os.kill(pid, signal.SIGTERM)
        assert await warm.reap(pid) == 0
    finally:
        await warm.close()
    assert _integrity(db) == "ok"


async def test_sigkill_during_a_sync_pass_leaves_a_sound_database(make_sim, tmp_path: Path) -> None:
    sim = await make_sim(stores=3, staff_per_store=5)
    await sim.control("POST", "/_sim/faults", {"latency_ms": 40})
    config = _config(tmp_path, sim)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "--config",
        str(config),
        "sync",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    db = tmp_path / "mirror.db"
    for _ in range(400):  # kill once some calendars are in and others are not
        await asyncio.sleep(0.05)
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    done = conn.execute("SELECT count(*) FROM sync_state WHERE kind='staff'")
                    if done.fetchone()[0] >= 3:
                        break
            except sqlite3.OperationalError:
                continue
    process.kill()
    await process.communicate()
    assert _integrity(db) == "ok"
    await sim.control("POST", "/_sim/faults", {"latency_ms": 0})
    code, out, err = await _run("--config", str(config), "sync")
    assert code == 0, err
    assert "15 of 15 staff calendar(s)" in out
    assert _integrity(db) == "ok"


async def test_serve_on_postgresql_answers_reads_and_readyz(
    sim: Sim, postgres_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    config = _config(tmp_path, sim, port=port, url=postgres_url)
    key = "serve-on-postgresql-key-0123456789"
    config.write_text(
        config.read_text() + f'[[api.keys]]\nname = "ops"\nkey = "{key}"\nscopes = ["read"]\n'
    )
    process = await _start_serve(config)
    base = f"http://127.0.0.1:{port}"
    staff_id = min(sim.world.staff)
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
            for _ in range(100):  # the poller's first staff polls come right after start
                async with session.get(f"{base}/readyz") as response:
                    ready = await response.json()
                if ready["checks"]["sync"].get("oldest_success_at"):
                    break
                await asyncio.sleep(0.1)
            assert response.status == 200 and ready["checks"]["database"] == {"status": "ok"}
            async with session.get(
                f"{base}/booking/v1/merchant/{sim.world.staff[staff_id]['merchantId']}"
            ) as response:
                assert response.status == 200, await response.text()
            async with session.get(f"{base}/booking/v1/staff/{staff_id}") as response:
                assert (await response.json())["id"] == staff_id
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b"serve.stopped" in stderr and b"Traceback" not in stderr
