"""``audit`` and ``resync`` against the simulator: injected drift (webhooks missed, rows
edited behind the mirror's back, an event deleted) is reported exactly, and repaired."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import repair as cli_repair
from cli.main import cli
from mirror import audit as audit_module
from mirror.audit import AuditError, audit
from mirror.poller import Window, poll_staff_calendar
from mirror.repair import repair
from mirror.resync import ResyncError, resync_staff
from mirror.sync import run_pass
from storage.times import instant_key
from tests.conftest import PARTNER_KEY, WEBHOOK_SECRET, Sim, Store, booxi_client, cli_env

ALL = {"Appointment", "GroupEvent", "TimeSlot"}
GRID_S = 900  # the generated world's bookings, events and slots start and end on quarter hours


# ---- helpers ------------------------------------------------------------------------------


async def _fill(sim: Sim, store: Store) -> Window:
    """A mirror filled by one sync pass over 30 days; the window it covered."""
    async with booxi_client(sim) as client:
        result = await run_pass(client, store.writer, store.engine, horizon_days=30)
    assert result.ok, result
    rows = await store.rows("SELECT window_start, window_end FROM sync_state WHERE kind='staff'")
    starts = sorted(_aware(r["window_start"]) for r in rows)
    ends = sorted(_aware(r["window_end"]) for r in rows)
    # each staff member's window is taken as their poll starts: a few seconds apart at most
    assert (starts[-1] - starts[0]).total_seconds() < 10
    return Window(starts[0], ends[-1])


def _aware(value: Any) -> dt.datetime:
    moment = dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


async def _clear_of_window_edges(within_s: int = 15) -> None:
    """Wait until a window computed now and one computed ``within_s`` later hold the same
    bookings: no quarter hour falls between their edges (now + 30 days, now - 7 days +
    1 minute). A CLI run computes its own window, a little later than the sync pass."""
    while True:
        now = time.time()
        if all((now + shift) % GRID_S < GRID_S - within_s for shift in (0, 60)):
            return
        await asyncio.sleep(1)


def _sql(store: Store, statement: str, *params: Any) -> None:
    """Edit the database directly, behind the mirror's back."""
    with sqlite3.connect(store.path) as conn:
        conn.execute(statement, params)


async def _live_in_window(store: Store, window: Window) -> dict[str, dict[str, Any]]:
    lo, hi = window.keys()
    rows = await store.rows(
        "SELECT booking_id, staff_id, status, starts_on, ends_on FROM booking "
        "WHERE status != 'Cancelled' AND starts_on <= :hi AND ends_on >= :lo",
        lo=lo,
        hi=hi,
    )
    return {r["booking_id"]: dict(r) for r in rows}


def _expected_kind(row: dict[str, Any] | None, truth: dict[str, Any], window: Window) -> str | None:
    """The kind an audit should give a booking changed upstream (None: outside the audit).

    Written from the simulator's side: the mirror held ``row`` before the change."""
    if truth.get("staffId") is None and (row is None or row["staff_id"] is None):
        return None  # a request no staff member has taken: on no calendar, not audited
    lo, hi = window.keys()
    span = truth["totalClientTimespan"]
    truth_live = truth["status"] != "Cancelled" and (
        instant_key(span["start"]) <= hi and instant_key(span["end"]) >= lo
    )
    held_live = (
        row is not None
        and row["status"] != "Cancelled"
        and row["starts_on"] <= hi
        and row["ends_on"] >= lo
    )
    if not truth_live and not held_live:
        return None
    if row is None:
        return "missing"
    if truth["status"] == "Cancelled":  # gone from Booxi's calendars, wherever it was moved
        return "extra"
    if row["staff_id"] != truth["staffId"]:
        return "moved_staff"
    if row["status"] != truth["status"]:
        return "status_differs"
    return "older_version"


async def _pick_untouched(
    store: Store, window: Window, avoid: set[str], count: int
) -> list[dict[str, Any]]:
    """Appointments held live in the window that nothing else touches, one per staff."""
    held = await _live_in_window(store, window)
    chosen: dict[int, dict[str, Any]] = {}
    for booking_id, row in sorted(held.items()):
        if booking_id not in avoid and row["staff_id"] not in chosen:
            events = await store.rows(
                "SELECT id FROM calendar_event WHERE booking_id = :b", b=booking_id
            )
            if events:
                chosen[row["staff_id"]] = {**row, "event_id": events[0]["id"]}
    assert len(chosen) >= count
    return list(chosen.values())[:count]


def _kinds(result: Any) -> dict[tuple[str, Any], str]:
    return {(d.object, d.id): d.kind for d in result.differences}


def _config(tmp_path: Path, sim: Sim, store: Store) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[booxi]\nbase_url = "{sim.api}"\npartner_key = "{PARTNER_KEY}"\n'
        f"requests_per_second = 500\nrequests_per_minute = 30000\ntimeout_s = 2\n"
        f'[storage]\nurl = "sqlite+aiosqlite:///{store.path}"\n'
        f"[sync]\nhorizon_days = 30\n"
        f'[webhook]\nsecret = "{WEBHOOK_SECRET}"\n'
    )
    return path


async def _run(config: Path, *args: str) -> tuple[int, str, str]:
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


# ---- audit and repair, in process -----------------------------------------------------------


async def test_audit_reports_exactly_the_injected_drift_and_repair_leaves_none(
    sim: Sim, store: Store
) -> None:
    window = await _fill(sim, store)
    staff = sorted(sim.world.staff)
    async with booxi_client(sim) as client:
        assert (await audit(client, store.engine, staff, window)).differences == []

        before = {
            r["booking_id"]: dict(r)
            for r in await store.rows(
                "SELECT booking_id, staff_id, status, starts_on, ends_on FROM booking"
            )
        }
        # (a) changes upstream the mirror missed: no webhook receiver is wired; rounds of
        # random changes until every kind a missed webhook can cause is among them (which
        # round gets there depends on the day and the hour the test runs)
        changed: list[str] = []
        expected: dict[tuple[str, Any], str] = {}
        for seed in range(3, 40):
            answer = await sim.control("POST", "/_sim/mutate", {"count": 20, "seed": seed})
            changed += answer["changed"]
            expected = {}
            for booking_id in dict.fromkeys(changed):
                truth = sim.world.bookings[booking_id]
                kind = _expected_kind(before.get(booking_id), truth, window)
                if kind is not None:
                    expected[("booking", booking_id)] = kind
            if {"missing", "extra", "moved_staff", "older_version"} <= set(expected.values()):
                break
        # (b) rows edited behind the mirror's back, same modifiedOn; (c) an event deleted
        noted, cancelled, unevented = await _pick_untouched(store, window, set(changed), 3)
        _sql(
            store,
            "UPDATE booking SET raw = json_set(raw, '$.quickNote', 'tampered') "
            "WHERE booking_id = ?",
            noted["booking_id"],
        )
        _sql(
            store,
            "UPDATE booking SET status = 'Cancelled', raw = json_set(raw, '$.status', "
            "'Cancelled') WHERE booking_id = ?",
            cancelled["booking_id"],
        )
        _sql(store, "DELETE FROM calendar_event WHERE id = ?", unevented["event_id"])
        expected[("booking", noted["booking_id"])] = "content_differs"
        expected[("booking", cancelled["booking_id"])] = "status_differs"
        expected[("event", unevented["event_id"])] = "missing"
        assert {"missing", "extra", "moved_staff", "older_version"} <= set(expected.values())

        found = await audit(client, store.engine, staff, window)

        assert _kinds(found) == expected
        report = {d.id: d.as_json() for d in found.differences}
        assert report[noted["booking_id"]]["fields"] == ["quickNote"]
        note = report[noted["booking_id"]]
        assert note["mirror"]["modified_on"] == note["booxi"]["modified_on"]
        assert report[cancelled["booking_id"]]["mirror"]["status"] == "Cancelled"
        for diff in report.values():
            if diff["kind"] == "extra":
                assert diff["booxi"]["status"] == "Cancelled"
            if diff["kind"] == "moved_staff":
                truth = sim.world.bookings[diff["id"]]
                assert diff["booxi"]["staff_id"] == truth["staffId"] != diff["mirror"]["staff_id"]
        assert "tampered" not in json.dumps([d.as_json() for d in found.differences])
        assert sum(found.by_kind().values()) == len(expected)

        repaired = await repair(client, store.writer, store.engine, found)

        assert not repaired.failures
        assert repaired.rewritten == 0  # the polls rewrote the rows edited at the same version
        assert repaired.after is not None and repaired.after.differences == []
        assert repaired.repaired == len(expected)
        assert (await audit(client, store.engine, staff, window)).differences == []


async def test_poll_rewrites_a_row_edited_at_the_same_version(sim: Sim, store: Store) -> None:
    window = await _fill(sim, store)
    (row,) = await _pick_untouched(store, window, set(), 1)
    booking_id = row["booking_id"]
    _sql(
        store,
        "UPDATE booking SET raw = json_set(raw, '$.quickNote', 'tampered') WHERE booking_id = ?",
        booking_id,
    )
    async with booxi_client(sim) as client:
        await poll_staff_calendar(client, store.writer, row["staff_id"], window)
    (stored,) = await store.rows("SELECT raw FROM booking WHERE booking_id = :b", b=booking_id)
    assert json.loads(stored["raw"]) == sim.world.bookings[booking_id]


async def test_audit_with_booxi_unreachable_is_an_error(sim: Sim, store: Store) -> None:
    window = await _fill(sim, store)
    await sim.control("POST", "/_sim/faults", {"outage": True})
    async with booxi_client(sim, max_attempts=1) as client:
        with pytest.raises(AuditError, match="BooxiUnavailable"):
            await audit(client, store.engine, sorted(sim.world.staff), window)


async def test_resync_with_booxi_unreachable_drops_nothing(sim: Sim, store: Store) -> None:
    await _fill(sim, store)
    counts = (
        "SELECT (SELECT count(*) FROM booking) AS b, (SELECT count(*) FROM calendar_event) AS e"
    )
    before = await store.rows(counts)
    await sim.control("POST", "/_sim/faults", {"outage": True})
    async with booxi_client(sim, max_attempts=1) as client:
        with pytest.raises(ResyncError, match="nothing dropped"):
            await resync_staff(
                client,
                store.writer,
                store.engine,
                horizon_days=30,
                staff_ids=[min(sim.world.staff)],
            )
    assert await store.rows(counts) == before


def test_cli_kinds_are_the_audit_kinds() -> None:
    assert cli_repair.KINDS == audit_module.KINDS


def test_resync_needs_exactly_one_scope() -> None:
    for args in ([], ["--all", "--staff", "1"]):
        result = CliRunner().invoke(cli, ["resync", *args])
        assert result.exit_code == 2
        assert "give one of --staff ID, --merchant ID or --all" in result.output


# ---- the commands, as an operator runs them ----------------------------------------------


async def test_audit_command_reports_drift_then_repairs_it(
    sim: Sim, store: Store, tmp_path: Path
) -> None:
    await _clear_of_window_edges()
    window = await _fill(sim, store)
    noted, unevented = await _pick_untouched(store, window, set(), 2)
    _sql(
        store,
        "UPDATE booking SET raw = json_set(raw, '$.quickNote', 'tampered') WHERE booking_id = ?",
        noted["booking_id"],
    )
    _sql(store, "DELETE FROM calendar_event WHERE id = ?", unevented["event_id"])
    config = _config(tmp_path, sim, store)

    code, out, err = await _run(config, "audit", "--json")

    assert code == 3, err
    report = json.loads(out)
    assert report["total"] == 2
    assert report["by_kind"] == {"missing": 1, "content_differs": 1}
    assert {(d["object"], d["id"], d["kind"]) for d in report["differences"]} == {
        ("booking", noted["booking_id"], "content_differs"),
        ("event", unevented["event_id"], "missing"),
    }
    assert report["by_staff"] == {
        str(noted["staff_id"]): {"content_differs": 1},
        str(unevented["staff_id"]): {"missing": 1},
    }
    assert sorted(report["staff"]) == sorted(sim.world.staff)
    assert "staff audited" in err  # the progress bar
    assert "audit.done" in err and "tampered" not in out + err

    code, out, err = await _run(config, "audit")
    assert code == 3, err
    assert "2 difference(s)" in out
    assert "content_differs" in out and "quickNote" in out and "missing" in out

    code, out, err = await _run(config, "audit", "--repair")
    assert code == 0, err
    assert "2 repaired, 0 left" in out
    assert (await _run(config, "audit", "--json"))[0] == 0


async def test_resync_command_rebuilds_one_staff_calendar(
    sim: Sim, store: Store, tmp_path: Path
) -> None:
    window = await _fill(sim, store)
    noted, *_ = await _pick_untouched(store, window, set(), 1)
    staff_id = noted["staff_id"]
    _sql(
        store,
        "UPDATE booking SET raw = json_set(raw, '$.quickNote', 'tampered') WHERE booking_id = ?",
        noted["booking_id"],
    )
    (template,) = await store.rows(
        "SELECT * FROM booking WHERE booking_id = :b", b=noted["booking_id"]
    )
    inside = instant_key(window.start + dt.timedelta(days=3))
    far = instant_key(window.end + dt.timedelta(days=30))
    for booking_id, starts in (("GHOST-IN", inside), ("KEPT-OUT", far)):  # not in Booxi
        _sql(
            store,
            "INSERT INTO booking (booking_id, merchant_id, staff_id, client_id, method, status, "
            "starts_on, ends_on, modified_on, raw, source, synced_at) "
            "VALUES (?, ?, ?, NULL, 'Appointment', 'Approved', ?, ?, ?, '{}', 'poll', ?)",
            booking_id,
            template["merchant_id"],
            staff_id,
            starts,
            starts,
            template["modified_on"],
            str(template["synced_at"]),
        )
    config = _config(tmp_path, sim, store)

    code, out, err = await _run(config, "resync", "--staff", str(staff_id))

    assert code == 0, err
    assert "resynced 1 of 1 staff calendar(s)" in out
    assert "staff calendars" in err and "resync.done" in err
    states = await store.rows("SELECT * FROM sync_state WHERE scope = :s", s=f"staff:{staff_id}")
    assert states[0]["last_success_at"] and states[0]["consecutive_failures"] == 0
    start, end = _aware(states[0]["window_start"]), _aware(states[0]["window_end"])
    world = sim.world
    truth_events = {e["id"]: e for e in world.calendar_events(staff_id, start, end, ALL)}
    truth_ids: set[str] = set()
    for event in truth_events.values():
        if event.get("bookingId"):
            truth_ids.add(event["bookingId"])
        if event.get("groupEventId"):
            truth_ids |= {b["bookingId"] for b in world.reservations_of(event["groupEventId"])}
    lo, hi = Window(start, end).keys()
    rows = await store.rows(
        "SELECT booking_id, raw FROM booking WHERE staff_id = :s AND starts_on <= :hi "
        "AND ends_on >= :lo AND status != 'Cancelled'",
        s=staff_id,
        lo=lo,
        hi=hi,
    )
    assert {r["booking_id"]: json.loads(r["raw"]) for r in rows} == {
        i: world.bookings[i] for i in truth_ids
    }
    events = await store.rows("SELECT id, raw FROM calendar_event WHERE staff_id = :s", s=staff_id)
    in_window = {
        e["id"]: json.loads(e["raw"])
        for e in events
        if json.loads(e["raw"])["start"] <= end.strftime("%Y-%m-%dT%H:%M:%SZ")
        and json.loads(e["raw"])["end"] >= start.strftime("%Y-%m-%dT%H:%M:%SZ")
    }
    assert in_window == truth_events
    assert await store.rows("SELECT booking_id FROM booking WHERE booking_id = 'GHOST-IN'") == []
    assert await store.rows("SELECT booking_id FROM booking WHERE booking_id = 'KEPT-OUT'")
