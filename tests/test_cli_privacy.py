"""``booxi-mirror privacy report|enforce`` as an operator runs them (Booxi not needed)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from mirror.sync import run_pass
from tests.conftest import Store, booxi_client, cli_env


async def _run(config: Path, *args: str) -> tuple[int, str, str]:
    env = cli_env()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_privacy_report_and_enforce_with_booxi_stopped(
    make_sim, store: Store, tmp_path: Path
) -> None:
    sim = await make_sim(days_after=4, clients=80)
    async with booxi_client(sim) as client:
        assert (await run_pass(client, store.writer, store.engine, horizon_days=30)).ok
    await sim.control("POST", "/_sim/faults", {"outage": True})
    await store.writer.close()  # the commands open the file themselves
    config = tmp_path / "config.toml"
    base = f'[storage]\nurl = "sqlite+aiosqlite:///{store.path}"\n'
    config.write_text(base)
    code, out, err = await _run(config, "privacy", "enforce")
    assert code == 1 and "retention_days is not set" in err
    config.write_text(base + "[privacy]\nretention_days = 0\n")
    # bookings carry clients' data; the client table is empty until fills or webhooks
    code, out, err = await _run(config, "privacy", "report", "--json")
    assert code == 0, err
    assert json.loads(out)["retentionDays"] == 0
    code, out, err = await _run(config, "privacy", "enforce", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["anonymizedClients"] > 0 and result["bookings"] > 0
    code, out, err = await _run(config, "privacy", "enforce")
    assert code == 0, err
    assert out.startswith("retention 0 days: 0 client(s) anonymized now")
    code, out, err = await _run(config, "privacy", "report")
    assert code == 0, err
    assert "client(s) with personal data held; retention: 0" in out
    held = store.path.read_bytes()
    gone = [c for c in sim.world.clients.values() if c["email"].encode() not in held]
    kept = [c for c in sim.world.clients.values() if c["email"].encode() in held]
    assert gone and kept  # past retention stripped; clients with future bookings kept
    assert "Traceback" not in err
    await store.writer.start()  # the fixture closes it again
