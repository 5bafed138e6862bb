"""No client data in the logs, at any verbosity: not in a real ``booxi-mirror`` process
run with ``-vv`` (the libraries' DEBUG lines: SQLAlchemy, aiosqlite, asyncio...), nor in
the application's records in process at DEBUG, while clients are synced, filled,
searched and written through the mirror."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mirror.config import ApiConfig
from tests.conftest import (
    API_KEY,
    PARTNER_KEY,
    WEBHOOK_SECRET,
    MirrorApp,
    Sim,
    booxi_client,
    cli_env,
    rfc3339,
)

# many first reads in a row: more than a key's default fill budget (api.fill_guard)
FILL_BUDGET = {"fills_per_minute": 10000, "fill_burst": 1000}
if not set(FILL_BUDGET) <= set(ApiConfig.model_fields):  # a mirror without a fill budget
    FILL_BUDGET = {}
FILLS = "".join(f"{name} = {value}\n" for name, value in FILL_BUDGET.items())
LIBRARIES = ("sqlalchemy", "sqlalchemy.engine", "aiosqlite", "asyncio", "alembic", "aiohttp")


def _personal_data(sim: Sim) -> list[str]:
    """Every client's e-mail, phone numbers and last name in the simulator (those the
    test created included)."""
    values: set[str] = set()
    for client in sim.world.clients.values():
        for field in ("email", "homePhoneNumber", "mobilePhoneNumber", "lastName"):
            value = client.get(field)
            if isinstance(value, str) and len(value.strip()) >= 3:
                values.add(value.strip())
    return sorted(values)


def _leaks(text: str, values: list[str]) -> list[str]:
    """The values found in ``text`` (last names as whole words, case-insensitively:
    "Lee" in "sleep" is no leak; JSON escapes undone first)."""
    found = []
    for value in values:
        pattern = r"(?<![\w@.+-])" + re.escape(value) + r"(?![\w@-])"
        if re.search(pattern, text, re.IGNORECASE):
            found.append(value)
    return found


def _unescaped(text: str) -> str:
    """Log lines as written, plus their JSON strings decoded (``\\u00e9`` and the like)."""
    decoded = []
    for line in text.splitlines():
        try:
            decoded.append(json.dumps(json.loads(line), ensure_ascii=False))
        except ValueError:
            decoded.append(line)
    return text + "\n" + "\n".join(decoded)


# ---- a real process --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, sim: Sim, port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[booxi]\nbase_url = "{sim.api}"\npartner_key = "{PARTNER_KEY}"\n'
        f"requests_per_second = 200\nrequests_per_minute = 10000\ntimeout_s = 5\n"
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "mirror.db"}"\n'
        f"[sync]\nhorizon_days = 10\ncalendar_interval_s = 5\n"
        f'[api]\nhost = "127.0.0.1"\nport = {port}\n{FILLS}'
        f'[[api.keys]]\nname = "all"\nkey = "{API_KEY}"\nscopes = ["read", "write"]\n'
        f'[webhook]\nsecret = "{WEBHOOK_SECRET}"\n'
    )
    return path


async def _mirror(config: Path, *args: str, stderr: Path) -> asyncio.subprocess.Process:
    with stderr.open("wb") as sink:  # a file: -vv writes more than a pipe holds
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "--config",
            str(config),
            "-vv",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=sink,
            env=cli_env(),
        )


async def _through_the_mirror(base: str, sim: Sim) -> None:
    """Client reads (fills), searches, history and writes, as an app would make them."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    clients = list(sim.world.clients.values())
    merchant = clients[0]["merchantId"]
    staff = next(s for s in sim.world.staff.values() if s["merchantId"] == merchant)
    service = next(
        s
        for s in sim.world.services.values()
        if s["merchantId"] == merchant and s["bookingMethod"] == "Appointment"
    )
    start = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0) + dt.timedelta(days=300)
    async with aiohttp.ClientSession(base_url=base, headers=headers) as session:

        async def call(method: str, path: str, **kwargs: Any) -> int:
            async with session.request(method, "/booking/v1" + path, **kwargs) as response:
                await response.read()
                return response.status

        for client in clients[:8]:
            assert await call("GET", f"/client/{client['id']}") == 200
            assert await call("GET", f"/client/{client['id']}") == 200  # from storage
        for client in clients[8:12]:
            m = client["merchantId"]
            assert await call("GET", "/client", params={"merchantId": m, "email": client["email"]})
            name = {"firstName": client["firstName"], "lastName": client["lastName"]}
            assert await call("GET", "/client", params={"merchantId": m, **name}) == 200
            phone = client.get("mobilePhoneNumber") or client.get("homePhoneNumber")
            if phone:
                assert await call("GET", "/client", params={"merchantId": m, "phoneNumber": phone})
        history = {
            "clientId": str(clients[12]["id"]),
            "from": rfc3339(start - dt.timedelta(days=400)),
            "to": rfc3339(start),
        }
        assert await call("GET", "/booking", params=history) == 200
        new = {
            "merchantId": merchant,
            "firstName": "Ottilie",
            "lastName": "Quaggenheim",
            "email": "ottilie.quaggenheim@example.org",
            "mobilePhoneNumber": "+1 514 555 0199",
        }
        assert await call("POST", "/client", json=new) == 200
        booking = {
            "merchantId": merchant,
            "bookingMethod": "Appointment",
            "startsOn": rfc3339(start),
            "status": "Approved",
            "staffId": staff["id"],
            "items": [{"serviceId": service["id"]}],
            "client": {
                "firstName": "Wenceslas",
                "lastName": "Brzęczyszczykiewicz",
                "email": "wenceslas.b@example.org",
                "homePhoneNumber": "+1 438 555 0142",
            },
        }
        assert await call("POST", "/booking", json=booking) == 200
        changed = {"lastName": "Quaggenheim-Hart", "email": "o.q.hart@example.org"}
        assert await call("PUT", f"/client/{clients[0]['id']}", json=changed) == 200


async def test_a_mirror_process_at_vv_logs_no_client_data(sim: Sim, tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, sim, port)
    sync_log, serve_log = tmp_path / "sync.log", tmp_path / "serve.log"

    sync = await _mirror(config, "sync", stderr=sync_log)
    await asyncio.wait_for(sync.communicate(), 120)
    assert sync.returncode == 0, sync_log.read_text()[-2000:]

    serve = await _mirror(config, "serve", stderr=serve_log)
    try:
        assert serve.stdout is not None
        line = await asyncio.wait_for(serve.stdout.readline(), 30)
        assert b"serving on" in line, serve_log.read_text()[-2000:]
        await _through_the_mirror(f"http://127.0.0.1:{port}", sim)
        await asyncio.sleep(0.5)  # the re-polls a write asks for
    finally:
        serve.send_signal(signal.SIGTERM)
        await asyncio.wait_for(serve.communicate(), 30)
    assert serve.returncode == 0, serve_log.read_text()[-2000:]

    logs = sync_log.read_text() + "\n" + serve_log.read_text()
    # -vv did show the libraries' DEBUG lines: statements ran and were logged
    assert '"logger": "sqlalchemy.engine.Engine"' in logs
    assert '"logger": "aiosqlite"' in logs
    assert "INSERT INTO client" in logs and "SELECT" in logs
    assert "write.forwarded" in logs and "http.request" in logs
    assert _leaks(_unescaped(logs), _personal_data(sim)) == []


# ---- in process ----------------------------------------------------------------------------


async def test_the_app_logs_no_client_data_at_debug(
    make_sim: Callable[..., Awaitable[Sim]],
    store: Any,
    make_mirror_app: Callable[..., Awaitable[MirrorApp]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mirror.sync import run_pass

    caplog.set_level(logging.DEBUG)
    for name in LIBRARIES:
        caplog.set_level(logging.DEBUG, logger=name)
    sim = await make_sim(days_after=10)
    booxi = booxi_client(sim)
    try:
        assert (await run_pass(booxi, store.writer, store.engine, horizon_days=10)).ok
        keys = [{"name": "all", "key": API_KEY, "scopes": ["read", "write"]}]
        app = await make_mirror_app(booxi=booxi, api={"keys": keys, **FILL_BUDGET})
        await _through_the_mirror(app.url, sim)
    finally:
        await booxi.close()
    records = caplog.records
    assert any(r.name.startswith("sqlalchemy.engine") for r in records)
    assert any(r.name == "aiosqlite" for r in records)
    text = "\n".join(_record_text(r) for r in records)
    assert _leaks(text, _personal_data(sim)) == []


def _record_text(record: logging.LogRecord) -> str:
    """What any handler could write of a record: its message, every attribute (the
    ``extra=`` fields) and its traceback. The in-process test servers use aiohttp's
    default access log, whose request line carries the query string; the mirror's
    own (``api.access_log``, what ``serve`` uses) leaves it out, so it is skipped here."""
    if record.name == "aiohttp.access":
        return ""
    parts = [record.getMessage(), repr(vars(record))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


async def test_the_engines_log_statements_but_never_row_values(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Both engines of a store (the async one, over aiosqlite, and the writer's own):
    at DEBUG they log each statement, not its parameters nor the rows it returns."""
    from sqlalchemy import select, text

    from storage import reference
    from storage.rows import client_row
    from storage.times import utcnow

    caplog.set_level(logging.DEBUG)
    for name in LIBRARIES:
        caplog.set_level(logging.DEBUG, logger=name)
    client: dict[str, Any] = {
        "id": 4242,
        "merchantId": 1,
        "firstName": "Hedwig",
        "lastName": "Valuewright",
        "email": "hedwig.valuewright@example.org",
        "mobilePhoneNumber": "+1 514 555 0123",
    }
    row = client_row(client, "write", utcnow())
    await store.writer.run(lambda conn: reference.upsert_clients(conn, [row]))
    by_writer = await store.writer.run(
        lambda conn: conn.execute(select(reference.CLIENT)).mappings().all()
    )
    async with store.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT * FROM client WHERE email = :e"), {"e": client["email"]}
        )
        by_engine = found.mappings().all()
    assert [r["last_name"] for r in [*by_writer, *by_engine]] == ["valuewright"] * 2
    statements = [r.getMessage() for r in caplog.records if r.name.startswith("sqlalchemy")]
    assert any("INSERT INTO client" in m for m in statements)
    assert any("SELECT" in m and "FROM client" in m for m in statements)
    assert any("SQL parameters hidden" in m for m in statements)
    assert any(r.name == "aiosqlite" for r in caplog.records)
    text_ = "\n".join(_record_text(r) for r in caplog.records)
    values = [str(client[k]) for k in ("email", "mobilePhoneNumber", "lastName")]
    assert _leaks(text_, values) == []
