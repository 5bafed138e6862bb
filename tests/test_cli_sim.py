"""``booxi-mirror sim`` and ``demo`` as a user runs them: a real process on a real port."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import cli_env

PARTNER_KEY = "pk-cli-test-7f3a9c2e"
SIGNING = "whsec_c2VjcmV0IGtleSBmb3IgdGVzdHM="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Running:
    def __init__(self, process: asyncio.subprocess.Process, banner: str, port: int) -> None:
        self.process = process
        self.banner = banner
        self.port = port
        self.api = f"http://127.0.0.1:{port}/booking/v1"

    def banner_value(self, label: str) -> str:
        match = re.search(rf"^\s+{label}\s+(\S+)$", self.banner, re.MULTILINE)
        assert match, self.banner
        return match.group(1)


@contextlib.asynccontextmanager
async def run_sim(
    *args: str, env: dict[str, str] | None = None, port: int | None = None, cwd: Path | None = None
) -> AsyncIterator[Running]:
    """Start the CLI, wait for its banner, stop it with Ctrl-C (SIGINT) at the end."""
    port = port or _free_port()
    clean = cli_env()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        f"--port={port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**clean, **(env or {})},
        cwd=cwd,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not lines or "Ctrl-C stops it." not in lines[-1]:
                line = await process.stdout.readline()
                if not line:
                    stderr = await process.stderr.read() if process.stderr else b""
                    raise AssertionError(f"exited before its banner: {stderr.decode()[-2000:]}")
                lines.append(line.decode())
        yield Running(process, "".join(lines), port)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            await process.wait()


async def test_sim_serves_paged_calendar_with_the_given_key() -> None:
    async with run_sim("sim", "--seed", "7", "--partner-key", PARTNER_KEY) as sim:
        assert f"{sim.api}" in sim.banner
        assert PARTNER_KEY not in sim.banner  # given by the user: not echoed
        assert "(as given)" in sim.banner
        headers = {"Booxi-PartnerKey": PARTNER_KEY}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.get(f"{sim.api}/staff/list") as response:
                assert response.status == 200
                staff_id = (await response.json())["staffs"][0]["id"]
            today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            params = [
                ("staffId", staff_id),
                ("from", today.strftime("%Y-%m-%dT%H:%M:%SZ")),
                ("to", (today + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")),
                ("eventType", "Appointment"),
                ("include", "Appointment"),
            ]
            async with session.get(f"{sim.api}/calendar", params=params) as response:
                assert response.status == 200
                body = await response.json()
            assert body["cursor"], "30 days of a staff member's calendar span several pages"
            assert len(body["calendarEvents"]) == 50
            assert {"calendarEvents", "bookings"} <= set(body)
            async with session.get(
                f"{sim.api}/calendar", params={"cursor": body["cursor"]}
            ) as response:
                assert response.status == 200
        sim.process.send_signal(signal.SIGINT)
        _, stderr = await sim.process.communicate()
        assert sim.process.returncode == 0
        assert b"Traceback" not in stderr
        assert PARTNER_KEY.encode() not in stderr  # logs never carry the key


async def test_sim_generates_keys_and_shows_them_once() -> None:
    async with run_sim("sim", "--stores", "1", "--clients", "5") as sim:
        key = sim.banner_value("partner key")
        assert key != sim.banner_value("merchant key")
        assert f"curl -H 'Booxi-PartnerKey: {key}'" in sim.banner
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"{sim.api}/merchant/list", headers={"Booxi-PartnerKey": key}
            ) as response:
                assert response.status == 200
            async with session.get(
                f"{sim.api}/merchant/list",
                headers={"Booxi-APIKey": sim.banner_value("merchant key")},
            ) as r:
                assert r.status == 200


async def test_sim_takes_keys_and_secrets_from_the_environment() -> None:
    env = {"BOOXI_SIM_PARTNER_KEY": PARTNER_KEY, "BOOXI_SIM_SIGNING_SECRET": SIGNING}
    async with (
        run_sim("sim", "--stores", "1", env=env) as sim,
        aiohttp.ClientSession() as session,
        session.get(
            f"{sim.api}/merchant/list", headers={"Booxi-PartnerKey": PARTNER_KEY}
        ) as response,
    ):
        assert response.status == 200


async def test_demo_runs_the_simulator_and_the_mirror_wired_together(tmp_path: Path) -> None:
    port, sim_port = _free_port(), _free_port()
    db = tmp_path / "demo.db"
    async with run_sim("demo", f"--sim-port={sim_port}", f"--db={db}", port=port) as demo:
        mirror = f"http://127.0.0.1:{port}"
        sim = f"http://127.0.0.1:{sim_port}"
        api_key = demo.banner_value("mirror API key")
        partner_key = demo.banner_value("partner key")
        assert api_key != partner_key
        assert demo.banner_value("mirror API") == f"{mirror}/booking/v1"
        assert demo.banner_value("simulator API") == f"{sim}/booking/v1"
        for label, path in (("readiness", "/readyz"), ("metrics", "/metrics")):
            assert demo.banner_value(label) == mirror + path
        assert demo.banner_value("OpenAPI") == mirror + "/openapi.json"
        curls = [line.strip() for line in demo.banner.splitlines() if "curl " in line]
        auth = f"curl -H 'Authorization: Bearer {api_key}' "
        assert curls[1:] == [
            auth + f"'{mirror}/booking/v1/staff/list'",
            next(c for c in curls if "/calendar?staffId=" in c),
            f"curl '{mirror}/readyz'",
        ]
        calendar = re.search(r"staffId=(\d+)&from=(\S+?)&to=(\S+?)&", curls[2])
        assert calendar
        start, end = (dt.datetime.fromisoformat(t) for t in calendar.group(2, 3))
        assert end - start == dt.timedelta(days=7)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{mirror}/readyz") as response:
                assert response.status == 200
                assert (await response.json())["status"] in ("ready", "degraded")
            for _ in range(10):  # the mirror polls with the same key: fair use may say wait
                async with session.get(
                    f"{sim}/booking/v1/staff/list", headers={"Booxi-PartnerKey": partner_key}
                ) as response:
                    status, body = response.status, await response.json()
                    if status != 429:
                        break
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            assert status == 200, body
            staffs = body["staffs"]
            assert len(staffs) == 15
            assert int(calendar.group(1)) in {s["id"] for s in staffs}
            async with session.get(f"{mirror}/booking/v1/staff/list") as response:
                assert response.status == 401
            async with session.get(
                f"{mirror}/booking/v1/staff/list", headers={"Authorization": f"Bearer {api_key}"}
            ) as response:
                assert response.status in (200, 501)  # 501 until the read API is in
            # webhooks are wired: the simulator's changes reach the mirror's inbox
            async with session.post(f"{sim}/_sim/mutate", json={"count": 3, "seed": 1}) as r:
                assert r.status == 200
            async with session.post(f"{sim}/_sim/webhooks/drain?timeout=20") as r:
                assert r.status == 200
            async with session.get(f"{sim}/_sim/webhooks") as r:
                stats = (await r.json())["stats"]
            assert stats["delivered"] >= 3
            assert not stats.get("failed_attempts") and not stats.get("gave_up")
            async with session.get(f"{mirror}/metrics") as response:
                assert "\nbooxi_mirror_webhook_lag_seconds " in await response.text()
        demo.process.send_signal(signal.SIGINT)
        _, stderr = await demo.process.communicate()
        assert demo.process.returncode == 0, stderr.decode()[-2000:]
        assert b"Traceback" not in stderr
        for key in (api_key, partner_key):
            assert key.encode() not in stderr  # logs never carry the keys
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM inbox_event").fetchone()[0] >= 3


async def test_demo_on_a_busy_port_is_one_error_line(tmp_path: Path) -> None:
    async with run_sim("sim", "--stores", "1") as sim:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "demo",
            f"--port={_free_port()}",
            f"--sim-port={sim.port}",
            f"--db={tmp_path / 'demo.db'}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    errors = [line for line in stderr.decode().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"Error: cannot serve the simulator on 127.0.0.1:{sim.port}: ")
    assert b"Traceback" not in stderr


async def test_sim_on_a_busy_port_is_one_error_line() -> None:
    async with run_sim("sim", "--stores", "1") as sim:
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "sim",
            "--stores",
            "1",
            f"--port={sim.port}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 1
        errors = [line for line in stderr.decode().splitlines() if line.startswith("Error:")]
        assert len(errors) == 1
        assert f"cannot serve on 127.0.0.1:{sim.port}" in errors[0]
        assert b"Traceback" not in stderr


@pytest.mark.parametrize("secret", ["not base64!", "whsec_"])
async def test_sim_refuses_a_bad_signing_secret(secret: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "sim",
        "--signing-secret",
        secret,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"--signing-secret" in stderr
    assert b"Traceback" not in stderr
