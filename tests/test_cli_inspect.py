"""The inspection commands as an operator runs them: real processes reading a mirror
filled from the simulator, while the mirror's app and writer hold the same file open (as
``serve`` would) and with the simulator stopped (they never call Booxi)."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mirror.sync import run_pass
from storage.migrate import head_revision
from storage.sync_state import record_failure
from storage.times import utcnow
from tests.conftest import (
    WEBHOOK_SECRET,
    MirrorApp,
    Sim,
    Store,
    booxi_client,
    cli_env,
    rfc3339,
)

AUTH = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}
ALL = {"Appointment", "GroupEvent", "TimeSlot"}


async def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def _json(config: Path, *args: str, code: int = 0) -> Any:
    status, out, err = await _cli(config, *args, "--json")
    assert status == code, err
    return json.loads(out)


def _config(tmp_path: Path, db: Path | str, *, staleness_s: float = 900) -> Path:
    """A config file in ``tmp_path`` for the database ``db`` (an SQLite file or a URL)."""
    path = tmp_path / "config.toml"
    url = f"sqlite+aiosqlite:///{db}" if isinstance(db, Path) else db
    path.write_text(
        '[booxi]\nbase_url = "http://127.0.0.1:9/booking/v1"\n'
        f'[storage]\nurl = "{url}"\n'
        f"[api]\nstaleness_s = {staleness_s}\n"
    )
    return path


async def _post(app: MirrorApp, event: dict[str, Any]) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(app.webhook_url, json=event, headers=AUTH) as response,
    ):
        assert response.status == 200, await response.text()
        return str((await response.json())["outcome"])


def _event(event_id: str, event_type: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "eventType": event_type,
        "createdOn": rfc3339(utcnow()),
        "content": content,
    }


def _later(booking: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(booking)
    changed.update(changes)
    changed["modifiedOn"] = rfc3339(utcnow() + dt.timedelta(minutes=1))
    return changed


def _rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


def _tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    tables = ("booking", "calendar_event", "client", "module_link", "inbox_event")
    return {t: sorted(_rows(db, f"SELECT * FROM {t}"), key=repr) for t in tables}


@pytest.fixture
async def filled(sim: Sim, store: Store, mirror_app: MirrorApp, tmp_path: Path) -> dict[str, Any]:
    """A mirror after one sync pass and a few webhooks (a booking changed, clients
    created, one with a module link); the simulator is then stopped."""
    async with booxi_client(sim) as booxi:
        assert (await run_pass(booxi, store.writer, store.engine, horizon_days=30)).ok
    world = sim.world
    staff_ids = sorted(world.staff)
    now = utcnow()
    held = {r["booking_id"] for r in await store.rows("SELECT booking_id FROM booking")}
    changed = next(
        b
        for b in world.bookings.values()
        if b["bookingId"] in held
        and b["bookingMethod"] == "Appointment"
        and b["status"] == "Approved"
        and b["staffId"] == staff_ids[0]
        and b["startsOn"] > rfc3339(now)
    )
    client = world.clients[changed["client"]["id"]]
    link = {
        "clientId": client["id"],
        "moduleId": "crm",
        "externalId": "CUST-42",
        "createdOn": rfc3339(now),
        "modifiedOn": rfc3339(now),
    }
    updated = _later(changed, status="PendingStaffApproval")
    events = [
        _event("evt-booking", "appointment.updated", {"booking": updated, "clientLinks": [link]})
    ]
    others = [c for c in world.clients.values() if c["id"] != client["id"]][:2]
    for index, person in enumerate([client, *others]):
        events.append(_event(f"evt-client-{index}", "client.updated", {"client": person}))
    events.append(_event("evt-other", "staff.updated", {"staff": {"id": staff_ids[0]}}))
    assert [await _post(mirror_app, e) for e in events] == ["applied"] * 4 + ["ignored"]
    await sim.server.close()  # from here on, Booxi is unreachable
    return {
        "world": world,
        "staff_ids": staff_ids,
        "changed": updated,
        "client": client,
        "others": others,
        "config": _config(tmp_path, store.url),
    }


@pytest.mark.both_engines
async def test_status_calendar_history_booking_read_the_mirror_with_booxi_down(
    filled: dict[str, Any], store: Store
) -> None:
    config, world = filled["config"], filled["world"]
    quiet_staff = filled["staff_ids"][-1]  # no webhook touched their calendar
    changed, client = filled["changed"], filled["client"]
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    polled = (await store.rows("SELECT booking_id FROM booking WHERE source = 'poll' LIMIT 1"))[0][
        "booking_id"
    ]
    long_ago = ("--from", "2000-01-01", "--to", "2000-01-02T00:00:00+00:00")
    runs = await asyncio.gather(
        _cli(config, "status"),
        _json(config, "status"),
        _cli(config, "calendar", "--staff", str(quiet_staff)),
        _json(config, "calendar", "--staff", str(quiet_staff)),
        _json(config, "calendar", "--staff", str(quiet_staff), *long_ago),
        _cli(config, "history", "--client", str(client["id"])),
        _json(config, "history", "--external-id", "crm:CUST-42"),
        _cli(config, "booking", changed["bookingId"]),
        _json(config, "booking", changed["bookingId"]),
        _json(config, "booking", polled),
        _cli(config, "booking", "NOPE-1"),
        _cli(config, "calendar", "--staff", "1"),
    )
    status_table, status, cal_table, cal, cal_empty, hist_table, hist, b_text, b, b_poll = runs[:10]
    missing_booking, missing_staff = runs[10:]

    # status: one fresh row per staff member, summary with the webhook lag
    assert status_table[0] == 0, status_table[2]
    assert "6 of 6 staff calendar(s) fresh" in status_table[1]
    assert "Webhook lag:" in status_table[1] and "STALE" not in status_table[1]
    assert all(f"{s} " in status_table[1] for s in filled["staff_ids"])
    assert max(len(line) for line in status_table[1].splitlines()) <= 100
    assert "\x1b[" not in status_table[1]  # no colours when stdout is not a terminal
    summary = status["summary"]
    assert summary["ok"] and summary["staff"] == 6
    assert summary["states"] == {"ok": 6, "stale": 0, "failing": 0, "never": 0}
    assert summary["webhookLagS"] is not None and summary["webhookLagS"] < 60
    assert summary["reference"]["state"] == "ok"
    assert [s["staffId"] for s in status["staff"]] == sorted(
        world.staff, key=lambda i: (world.staff[i]["merchantId"], i)
    )
    first = status["staff"][0]
    assert first["state"] == "ok" and first["consecutiveFailures"] == 0
    assert first["staffName"] == world.staff[first["staffId"]]["name"]
    assert (
        first["lastSuccessAt"].endswith("Z") and first["covered"]["from"] < first["covered"]["to"]
    )

    # calendar: today + 7 days, exactly Booxi's events and bookings
    truth = world.calendar_events(quiet_staff, today, today + dt.timedelta(days=7), ALL)
    assert truth
    assert cal["from"] == rfc3339(today) and cal["to"] == rfc3339(today + dt.timedelta(days=7))
    assert cal["calendarEvents"] == truth and cal["notCovered"] == []
    appointments = {e["bookingId"] for e in truth if e["type"] == "Appointment"}
    assert appointments <= {b["bookingId"] for b in cal["bookings"]}
    assert all(b == world.bookings[b["bookingId"]] for b in cal["bookings"])
    assert cal_table[0] == 0 and all(i in cal_table[1] for i in appointments)
    assert f"Staff {quiet_staff} {world.staff[quiet_staff]['name']}" in cal_table[1]
    assert cal_empty["calendarEvents"] == [] and len(cal_empty["notCovered"]) == 1

    # history, by client id and through the module link
    expected = [
        json.loads(r["raw"])
        for r in await store.rows(
            "SELECT raw FROM booking WHERE client_id = :c ORDER BY starts_on, booking_id",
            c=client["id"],
        )
    ]
    assert hist == {"clientIds": [client["id"]], "bookings": expected}
    assert changed in expected
    assert hist_table[0] == 0 and all(b["bookingId"] in hist_table[1] for b in expected)

    # booking: stored JSON and provenance
    assert b["booking"] == changed
    assert b["provenance"]["source"] == "webhook"
    assert b["provenance"]["modifiedOn"] == changed["modifiedOn"]
    assert [e["eventId"] for e in b["webhookEvents"]] == ["evt-booking"]
    assert [e["start"] for e in b["calendarEvents"]] == [
        i["reservedClientTimespan"]["start"] for i in changed["items"]
    ]
    assert b_poll["provenance"]["source"] == "poll"
    assert b_poll["booking"] == world.bookings[polled]
    assert b_text[0] == 0 and "source       webhook" in b_text[1]
    assert '"status": "PendingStaffApproval"' in b_text[1] and "evt-booking" in b_text[1]

    for code, out, err in (missing_booking, missing_staff):
        assert code == 1 and out == ""
        assert err.startswith("Error: ") and len(err.strip().splitlines()) == 1
    assert "NOPE-1" in missing_booking[2] and "staff 1 " in missing_staff[2]


@pytest.mark.both_engines
async def test_clients_stats_inbox_and_db_check_read_the_mirror(
    filled: dict[str, Any], store: Store
) -> None:
    config = filled["config"]
    client, others = filled["client"], filled["others"]
    name = f"{client['firstName'].upper()} {client['lastName'].lower()}"
    phone = client["mobilePhoneNumber"].removeprefix("+1")
    phone = f"({phone[:3]}) {phone[3:6]}-{phone[6:]}"
    runs = await asyncio.gather(
        _json(config, "clients", "search", "--name", name),
        _json(config, "clients", "search", "--email", others[0]["email"].upper()),
        _json(config, "clients", "search", "--phone", phone),
        _json(config, "clients", "search", "--external-id", "crm:CUST-42"),
        _cli(config, "clients", "search", "--merchant", str(client["merchantId"])),
        _cli(config, "stats"),
        _json(config, "stats"),
        _cli(config, "inbox", "list"),
        _json(config, "inbox", "list", "--limit", "2"),
        _cli(config, "inbox", "show", "evt-booking"),
        _json(config, "inbox", "show", "evt-client-1"),
        _cli(config, "db", "check"),
        _json(config, "db", "check"),
    )
    by_name, by_email, by_phone, by_link, clients_table, stats_table, stats = runs[:7]
    inbox_table, inbox, show_text, show, check_text, check = runs[7:]

    assert [m["client"]["id"] for m in by_name] == [client["id"]]
    assert by_name[0]["client"] == client and by_name[0]["source"] == "webhook"
    assert by_name[0]["clientLinks"] == [{"moduleId": "crm", "externalId": "CUST-42"}]
    assert [m["client"] for m in by_email] == [others[0]]
    assert client["id"] in [m["client"]["id"] for m in by_phone]
    assert [m["client"]["id"] for m in by_link] == [client["id"]]
    in_store = [c for c in (client, *others) if c["merchantId"] == client["merchantId"]]
    assert clients_table[0] == 0 and f"{len(in_store)} client(s)" in clients_table[1]
    assert client["email"] in clients_table[1] and "crm:CUST-42" in clients_table[1]

    counts = {
        t: (await store.rows(f"SELECT count(*) AS n FROM {t}"))[0]["n"] for t in stats["tables"]
    }
    assert stats["tables"] == counts and counts["booking"] > 100
    if store.dialect == "sqlite":
        assert stats["fileBytes"] == store.path.stat().st_size
    else:  # the database's size; no -wal file, no free pages
        assert stats["fileBytes"] > 0 and stats["walBytes"] is stats["freeBytes"] is None
    assert stats["inbox"]["events"] == 5
    assert stats["piiRows"] == {
        "client": 3,
        "booking": counts["booking"],  # every booking the simulator makes has a client
        "inbox_event": 4,  # the booking and client events, not staff.updated
    }
    first_start = (await store.rows("SELECT min(starts_on) AS s FROM booking"))[0]["s"]
    assert stats["bookings"]["oldestStart"] == first_start.replace(".000000", "")
    assert stats_table[0] == 0 and "inbox_event" in stats_table[1]

    assert inbox_table[0] == 0
    assert all(f"evt-client-{i}" in inbox_table[1] for i in range(3))
    assert [e["eventId"] for e in inbox] == ["evt-client-2", "evt-other"]
    assert inbox[1]["outcome"] == "ignored" and inbox[1]["verified"] == "secret"
    assert show_text[0] == 0 and '"eventType": "appointment.updated"' in show_text[1]
    assert show["body"]["content"]["client"] == others[0] and show["outcome"] == "applied"

    assert check_text[0] == 0, check_text
    assert f"schema at revision {head_revision()} of head {head_revision()}" in check_text[1]
    assert check == {
        "ok": True,
        "integrity": ["ok"] if store.dialect == "sqlite" else None,
        "foreignKeyViolations": [],
        "revision": head_revision(),
        "head": head_revision(),
    }


async def test_status_exits_2_when_a_calendar_fails_or_is_stale(
    filled: dict[str, Any], store: Store, tmp_path: Path
) -> None:
    staff_id = filled["staff_ids"][1]
    merchant_id = filled["world"].staff[staff_id]["merchantId"]
    await store.writer.run(
        lambda conn: record_failure(
            conn,
            f"staff:{staff_id}",
            kind="staff",
            attempted_at=utcnow(),
            error="BooxiUnavailable: connection refused [Errno 111]",
            merchant_id=merchant_id,
            staff_id=staff_id,
        )
    )
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    runs = await asyncio.gather(
        _cli(filled["config"], "status"),
        _json(filled["config"], "status", code=2),
        _json(_config(tiny, store.path, staleness_s=0.001), "status", code=2),
    )
    (code, table, _), failing, stale = runs
    assert code == 2
    assert "5 of 6 staff calendar(s) fresh" in table
    assert "FAILING" in table and "connection refused [Errno 111]" in table
    states = {s["staffId"]: s["state"] for s in failing["staff"]}
    assert states.pop(staff_id) == "failing" and set(states.values()) == {"ok"}
    assert not failing["summary"]["ok"] and failing["summary"]["states"]["failing"] == 1
    assert {s["state"] for s in stale["staff"]} == {"stale", "failing"}
    assert stale["summary"]["states"] == {"ok": 0, "stale": 5, "failing": 1, "never": 0}


async def test_inbox_replay_restores_then_changes_nothing(
    filled: dict[str, Any], store: Store
) -> None:
    from storage.bookings import delete_booking

    config, db, booking_id = filled["config"], store.path, filled["changed"]["bookingId"]
    before = _tables(db)
    await store.writer.run(lambda conn: delete_booking(conn, booking_id))  # lost behind our back
    assert not _rows(db, "SELECT 1 FROM booking WHERE booking_id = ?", booking_id)

    first = await _json(config, "inbox", "replay", "--since", "2000-01-01")
    assert first["replayed"] == 5
    outcomes = {e["eventId"]: e["outcome"] for e in first["events"]}
    assert outcomes == {
        "evt-booking": "applied",
        "evt-client-0": "stale",
        "evt-client-1": "stale",
        "evt-client-2": "stale",
        "evt-other": "ignored",
    }
    restored = _tables(db)
    assert [json.loads(r[-3]) for r in restored["booking"] if r[0] == booking_id] == [
        filled["changed"]
    ]
    assert restored["inbox_event"] == before["inbox_event"]  # first outcomes kept

    code, out, err = await _cli(config, "inbox", "replay", "--event", "evt-booking")
    assert code == 0, err
    assert "replayed 1 event(s): 1 stale" in out and "events" in err  # the progress bar
    assert _tables(db) == restored
    code, out, err = await _cli(config, "inbox", "replay", "--event", "evt-missing")
    assert (code, out) == (1, "") and err.startswith("Error: event evt-missing")


async def test_db_backup_vacuum_and_errors(filled: dict[str, Any], store: Store, tmp_path: Path):
    config = filled["config"]
    target = tmp_path / "backup.db"
    not_a_mirror = tmp_path / "other.db"
    sqlite3.connect(not_a_mirror).execute("CREATE TABLE t (x)").connection.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    configs = {}
    for name, db in (
        ("missing", tmp_path / "nope.db"),
        ("foreign", not_a_mirror),
        ("junk", garbage),
    ):
        folder = tmp_path / name
        folder.mkdir()
        configs[name] = _config(folder, db)
    code, out, err = await _cli(config, "db", "backup", str(target))
    assert code == 0, err
    assert f"backup written to {target}" in out and "quick_check: ok" in out and "pages" in err
    runs = await asyncio.gather(
        _cli(config, "db", "backup", str(target)),
        _json(config, "db", "backup", str(target), "--force"),
        _cli(configs["missing"], "status"),
        _cli(configs["foreign"], "stats"),
        _cli(configs["junk"], "db", "check"),
    )
    exists, forced = runs[:2]
    assert exists[0] == 1 and "--force" in exists[2]
    assert forced["quickCheck"] == "ok" and forced["bytes"] == target.stat().st_size
    for code, out, err in runs[2:]:
        assert (code, out) == (1, "")
        assert err.startswith("Error: ") and len(err.strip().splitlines()) == 1
    assert "no such database file" in runs[2][2]
    assert "not a booxi-mirror database" in runs[3][2]
    assert "not an SQLite database" in runs[4][2]
    assert not (tmp_path / "nope.db").exists()  # never created by a read

    with sqlite3.connect(target) as copy_:
        assert copy_.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        copied = copy_.execute("SELECT count(*) FROM booking").fetchone()[0]
    assert copied == _rows(store.path, "SELECT count(*) FROM booking")[0][0]

    vacuumed = await _json(config, "db", "vacuum")
    before, after = vacuumed["before"], vacuumed["after"]
    assert after["fileBytes"] + after["walBytes"] <= before["fileBytes"] + before["walBytes"]
    assert _rows(store.path, "PRAGMA integrity_check") == [("ok",)]


async def test_inspection_of_postgresql_says_what_it_cannot_read_or_do(
    postgres_url: str, tmp_path: Path
) -> None:
    config = _config(tmp_path, postgres_url)  # an empty database: no mirror's tables
    missing = tmp_path / "missing"
    missing.mkdir()
    nowhere = postgres_url.rpartition("/")[0] + "/booxi_mirror_test_no_such_database"
    runs = await asyncio.gather(
        _cli(config, "status"),
        _cli(config, "db", "backup", str(tmp_path / "copy.db")),
        _cli(config, "db", "vacuum"),
        _cli(_config(missing, nowhere), "history", "--client", "1"),
    )
    for code, out, err in runs:  # (vacuum says "vacuuming..." first, as on SQLite)
        assert (code, out) == (1, "") and err.splitlines()[-1].startswith("Error: "), err
        assert "Traceback" not in err
    assert "not a booxi-mirror database (no alembic_version, booking" in runs[0][2]
    assert "db backup works on SQLite files, not PostgreSQL (use pg_dump)" in runs[1][2]
    assert "db vacuum works on SQLite files, not PostgreSQL" in runs[2][2]
    assert 'cannot read it (database "booxi_mirror_test_no_such_database"' in runs[3][2]
    assert len(runs[3][2].strip().splitlines()) == 1
