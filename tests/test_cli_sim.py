"""``booxi-mirror sim`` and ``demo`` as a user runs them: a real process on a real port."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

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
async def run_sim(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Running]:
    """Start the CLI, wait for its banner, stop it with Ctrl-C (SIGINT) at the end."""
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOOXI_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mirror",
        *args,
        f"--port={port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**clean, **(env or {})},
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not lines or "Ctrl-C stops it." not in lines[-1]:
                line = await process.stdout.readline()
                if not line:
                    raise AssertionError("the simulator exited before its banner")
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


async def test_demo_starts_the_simulator() -> None:
    async with run_sim("demo") as sim:
        key = sim.banner_value("partner key")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{sim.api}/staff/list", headers={"Booxi-PartnerKey": key}) as response,
        ):
            assert response.status == 200
            assert len((await response.json())["staffs"]) == 15


async def test_sim_on_a_busy_port_is_one_error_line() -> None:
    async with run_sim("sim", "--stores", "1") as sim:
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mirror",
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
        "mirror",
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
