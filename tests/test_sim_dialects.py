"""Dialects: the simulator playing other readings of Booxi; and forced answers (faults)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp
import pytest

from simulator import SimSettings
from simulator.dialects import BUNDLES, NAMES
from tests.conftest import (
    MERCHANT_KEY,
    Receiver,
    Sim,
    SimFactory,
    calendar_params,
    rfc3339,
)

NOW = dt.datetime.now(dt.UTC)
EXTRA = {"note": "unknown to the mirror"}


async def walk(sim: Sim, path: str, params: Any, key: str) -> list[dict[str, Any]]:
    """Every page's ``key`` list, following cursors however the last page ends."""
    pages: list[dict[str, Any]] = []
    status, body = await sim.get(path, params)
    assert status == 200, body
    pages.append(body)
    while body.get("cursor"):
        status, body = await sim.get(path, {"cursor": body["cursor"]})
        assert status == 200, body
        pages.append(body)
    return pages


def _busiest_client(sim: Sim) -> int:
    counts: dict[int, int] = {}
    for booking in sim.world.bookings.values():
        counts[booking["client"]["id"]] = counts.get(booking["client"]["id"], 0) + 1
    return max(counts, key=lambda c: counts[c])


def _free_start(sim: Sim, staff_id: int, minutes: int) -> dt.datetime:
    start = (NOW + dt.timedelta(days=3)).replace(hour=3, minute=0, second=0, microsecond=0)
    for step in range(24 * 14 * 2):
        moment = start + dt.timedelta(minutes=30 * step)
        end = moment + dt.timedelta(minutes=minutes)
        if sim.world.conflict_for(staff_id, rfc3339(moment), rfc3339(end)) is None:
            return moment
    raise AssertionError("no free time")


def _booking_body(sim: Sim) -> dict[str, Any]:
    staff = next(iter(sim.world.staff.values()))
    service = next(
        s
        for s in sim.world.services.values()
        if s["merchantId"] == staff["merchantId"] and s["bookingMethod"] == "Appointment"
    )
    client = next(c for c in sim.world.clients.values() if c["merchantId"] == staff["merchantId"])
    return {
        "merchantId": staff["merchantId"],
        "bookingMethod": "Appointment",
        "startsOn": rfc3339(_free_start(sim, staff["id"], service["duration"])),
        "staffId": staff["id"],
        "items": [{"serviceId": service["id"]}],
        "client": {"id": client["id"]},
    }


def _busy_staff(sim: Sim) -> int:
    return max(sim.world.staff, key=lambda s: len(list(sim.world.bookings_of_staff(s))))


def _week() -> tuple[dt.datetime, dt.datetime]:
    start = NOW.replace(microsecond=0) + dt.timedelta(hours=1)
    return start, start + dt.timedelta(days=7)


# ---- settings and the control endpoint ------------------------------------------------
def test_settings_refuse_an_unknown_dialect_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="write-bare") as caught:
        SimSettings(partner_key="p", merchant_key="m", dialects=("no-such",))
    assert "no-such" in str(caught.value) and "independent" in str(caught.value)
    with pytest.raises(ValueError, match="exclude"):
        SimSettings(partner_key="p", merchant_key="m", dialects=("page-size-1", "page-size-2"))
    settings = SimSettings(partner_key="p", merchant_key="m", dialects=("independent",))
    assert settings.dialects == ("independent",)


async def test_dialects_control_endpoint_shows_replaces_and_resets(make_sim: SimFactory) -> None:
    sim = await make_sim(dialects=("cursor-empty",))
    shown = await sim.control("GET", "/_sim/dialects")
    assert shown["active"] == ["cursor-empty"]
    assert list(shown["available"]) == list(NAMES)
    assert all(isinstance(text, str) and text for text in shown["available"].values())

    shown = await sim.control("POST", "/_sim/dialects", {"active": ["write-bare", "lists-null"]})
    assert shown["active"] == ["write-bare", "lists-null"]
    bad: list[dict[str, Any]] = [
        {"active": ["write-bare", "no-such"]},
        {"active": ["page-size-1", "independent"]},
        {"active": "write-bare"},
        {"other": []},
    ]
    for body in bad:
        status, error = await sim.call("POST", sim.url + "/_sim/dialects", json_body=body)
        assert status == 400 and error["code"] == 400, body
    assert (await sim.control("GET", "/_sim/dialects"))["active"] == ["write-bare", "lists-null"]

    shown = await sim.control("DELETE", "/_sim/dialects")
    assert shown["active"] == ["cursor-empty"]
    assert (await sim.control("POST", "/_sim/dialects", {"active": []}))["active"] == []


async def test_without_dialects_answers_are_as_before(sim: Sim) -> None:
    assert (await sim.control("GET", "/_sim/dialects"))["active"] == []
    status, body = await sim.call("POST", "/booking", json_body=_booking_body(sim))
    assert status == 200 and set(body) == {"booking", "groupEvents"}
    status, body = await sim.get("/staff/list", {})
    assert status == 200 and body["cursor"] is None and "x-sim-envelope" not in body
    assert all("x-sim-extra" not in staff for staff in body["staffs"])


async def test_dialects_do_not_change_the_world(make_sim: SimFactory) -> None:
    anchor = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    plain = await make_sim(anchor=anchor)
    other = await make_sim(anchor=anchor, dialects=("independent",))
    assert plain.world.state() == other.world.state()
    await other.get("/staff/list", {})
    await other.get(f"/booking/{next(iter(other.world.bookings))}")
    assert "x-sim-extra" not in str(other.world.state())


# ---- write-bare ----------------------------------------------------------------------
async def test_write_bare_answers_bare_objects(make_sim: SimFactory) -> None:
    sim = await make_sim(dialects=("write-bare",))
    status, booking = await sim.call("POST", "/booking", json_body=_booking_body(sim))
    assert status == 200 and booking == sim.world.bookings[booking["bookingId"]]
    status, updated = await sim.call(
        "PUT", f"/booking/{booking['bookingId']}", json_body={"quickNote": "bare"}
    )
    assert status == 200 and updated["quickNote"] == "bare" and "booking" not in updated

    merchant_id = next(iter(sim.world.merchants))
    status, client = await sim.call(
        "POST",
        "/client",
        json_body={"merchantId": merchant_id, "firstName": "Ada", "lastName": "Bare"},
    )
    assert status == 200 and client == sim.world.clients[client["id"]]
    status, client = await sim.call(
        "PUT", f"/client/{client['id']}", json_body={"quickNote": "bare too"}
    )
    assert status == 200 and client["quickNote"] == "bare too" and "clientLinks" not in client
    status, link = await sim.call(
        "PUT", f"/client/{client['id']}/moduleLink/crm", json_body={"externalId": "X-1"}
    )
    assert status == 200 and link == sim.world.links[(client["id"], "crm")]
    status, body = await sim.get(f"/client/{client['id']}/moduleLink/crm")
    assert status == 200 and set(body) == {"link", "client"}  # reads keep their envelope


# ---- history-range-required ------------------------------------------------------------
async def test_history_range_required(make_sim: SimFactory) -> None:
    sim = await make_sim(dialects=("history-range-required",))
    client_id = _busiest_client(sim)
    start = NOW - dt.timedelta(days=40)
    for params in (
        {"clientId": client_id},
        {"clientId": client_id, "from": rfc3339(start)},
        {"clientId": client_id, "to": rfc3339(start)},
        {
            "clientId": client_id,
            "from": rfc3339(start),
            "to": rfc3339(start + dt.timedelta(days=367)),
        },
    ):
        status, body = await sim.get("/booking", params)
        assert status == 400 and set(body) == {"message", "code"}, params
    params = {
        "clientId": client_id,
        "from": rfc3339(start),
        "to": rfc3339(start + dt.timedelta(days=366)),
    }
    status, body = await sim.get("/booking", params)
    assert status == 200 and body["bookings"]


# ---- page sizes, offsets and cursors ---------------------------------------------------
@pytest.mark.parametrize(("dialect", "size"), [("page-size-1", 1), ("page-size-2", 2)])
async def test_page_size_dialects_size_every_cursor_list(
    make_sim: SimFactory, dialect: str, size: int
) -> None:
    sim = await make_sim(dialects=(dialect,))
    start, end = _week()
    lists = [
        ("/staff/list", {}, "staffs", len(sim.world.staff)),
        ("/service/list", {}, "services", len(sim.world.services)),
        ("/serviceCategory/list", {}, "serviceCategories", len(sim.world.categories)),
        ("/calendar", calendar_params(_busy_staff(sim), start, end), "calendarEvents", None),
        ("/booking", {"clientId": _busiest_client(sim)}, "bookings", None),
    ]
    for path, params, key, total in lists:
        pages = await walk(sim, path, params, key)
        assert len(pages) > 1, path
        assert all(len(page[key]) == size for page in pages[:-1]), path
        assert 1 <= len(pages[-1][key]) <= size, path
        if total is not None:
            assert sum(len(page[key]) for page in pages) == total
    service = next(s for s in sim.world.services.values() if s["bookingMethod"] == "Appointment")
    # four days: any one day may be a store's closed day, whatever the time of day
    params = {"from": rfc3339(NOW + dt.timedelta(days=1)), "to": rfc3339(NOW + dt.timedelta(5))}
    status, body = await sim.get(f"/service/{service['id']}/availability", params)
    assert status == 200 and len(body["serviceAvailability"]) == size and body["cursor"]


async def test_page_size_50_overrides_the_settings(make_sim: SimFactory) -> None:
    sim = await make_sim(page_size=3, dialects=("page-size-50",))
    pages = await walk(sim, "/service/list", {}, "services")
    assert [len(page["services"]) for page in pages][0] == min(50, len(sim.world.services))


async def test_offset_limit_10_is_the_default_limit(make_sim: SimFactory) -> None:
    sim = await make_sim(stores=12, dialects=("offset-limit-10",))
    status, body = await sim.get("/merchant/list")
    assert status == 200 and body["limit"] == 10 and len(body["items"]) == 10
    assert body["total"] == 12
    for path in ("/service", "/staff", "/serviceCategory"):
        status, body = await sim.get(path)
        assert status == 200 and body["limit"] == 10, path
    status, body = await sim.get("/merchant/list", {"limit": 11})
    assert body["limit"] == 11 and len(body["items"]) == 11
    status, body = await sim.get("/merchant/list", {"limit": 101})
    assert status == 400
    plain = await make_sim(stores=12)
    status, body = await plain.get("/merchant/list")
    assert body["limit"] == 20  # the settings' page size


@pytest.mark.parametrize(
    ("dialect", "ends"), [("cursor-absent", "absent"), ("cursor-empty", ""), (None, None)]
)
async def test_the_last_page_cursor(
    make_sim: SimFactory, dialect: str | None, ends: str | None
) -> None:
    sim = await make_sim(page_size=4, dialects=(dialect,) if dialect else ())
    pages = await walk(sim, "/staff/list", {}, "staffs")
    assert len(pages) == 2 and isinstance(pages[0]["cursor"], str) and pages[0]["cursor"]
    if ends == "absent":
        assert "cursor" not in pages[-1]
    else:
        assert pages[-1]["cursor"] == ends
    assert sum(len(page["staffs"]) for page in pages) == len(sim.world.staff)


# ---- lists-null ----------------------------------------------------------------------
async def test_lists_null(make_sim: SimFactory) -> None:
    sim = await make_sim(dialects=("lists-null",))
    start, end = _week()
    status, body = await sim.get(
        "/calendar", calendar_params(_busy_staff(sim), start, end, types=("Appointment",))
    )
    assert status == 200 and body["calendarEvents"]
    assert body["groupEvents"] is None and body["timeSlots"] is None
    status, body = await sim.get("/booking", {"clientId": _busiest_client(sim)})
    assert status == 200 and body["bookings"] and body["resources"] is None

    appointment = next(iter(sim.world.bookings))
    status, body = await sim.get(f"/booking/{appointment}")
    assert status == 200 and set(body) == {"booking"}
    reservation = next(b["bookingId"] for b in sim.world.bookings.values() if b.get("groupEventId"))
    status, body = await sim.get(f"/booking/{reservation}")
    assert status == 200 and len(body["groupEvents"]) == 1
    status, body = await sim.call("POST", "/booking", json_body=_booking_body(sim))
    assert status == 200 and body["groupEvents"] is None

    unlinked = next(c for c in sim.world.clients.values() if not sim.world.links_of(c["id"]))
    status, body = await sim.get(f"/client/{unlinked['id']}")
    assert status == 200 and body["clientLinks"] is None
    status, body = await sim.get("/client", {"moduleId": "crm", "externalId": "nobody"})
    assert status == 200 and body == {"clients": None, "clientLinks": None}
    status, body = await sim.get("/staff/list", {"merchantId": 1})
    assert body["staffs"] == []  # directory lists are not among those it changes


# ---- unknown-fields ------------------------------------------------------------------
async def test_unknown_fields_on_objects_and_envelopes(make_sim: SimFactory) -> None:
    sim = await make_sim(dialects=("unknown-fields",))
    staff_id = next(iter(sim.world.staff))
    status, body = await sim.get(f"/staff/{staff_id}")
    assert body["x-sim-extra"] == EXTRA and "x-sim-envelope" not in body
    status, body = await sim.get("/staff/list", {})
    assert body["x-sim-envelope"] == 1 and all(s["x-sim-extra"] == EXTRA for s in body["staffs"])
    status, body = await sim.get("/merchant/list")
    assert body["x-sim-envelope"] == 1 and all(m["x-sim-extra"] == EXTRA for m in body["items"])
    status, body = await sim.get("/serviceCategory")
    assert body["x-sim-envelope"] == 1 and all("x-sim-extra" not in c for c in body["items"])
    start, end = _week()
    status, body = await sim.get("/calendar", calendar_params(_busy_staff(sim), start, end))
    assert body["x-sim-envelope"] == 1 and body["staff"]["x-sim-extra"] == EXTRA
    assert all(b["x-sim-extra"] == EXTRA for b in body["bookings"])
    assert all(s["x-sim-extra"] == EXTRA for s in body["services"])
    assert all("x-sim-extra" not in e for e in body["calendarEvents"])
    status, body = await sim.call("POST", "/booking", json_body=_booking_body(sim))
    assert body["booking"]["x-sim-extra"] == EXTRA and body["x-sim-envelope"] == 1
    client_id = body["booking"]["client"]["id"]
    status, body = await sim.get(f"/client/{client_id}")
    assert body["client"]["x-sim-extra"] == EXTRA
    status, body = await sim.get("/booking/A1")
    assert status == 404 and set(body) == {"message", "code"}
    assert "x-sim-extra" not in str(sim.world.state())


async def test_unknown_fields_reach_webhooks(make_sim: SimFactory, receiver: Receiver) -> None:
    sim = await make_sim(webhook_urls=(receiver.url,), dialects=("unknown-fields",))
    status, body = await sim.call("POST", "/booking", json_body=_booking_body(sim))
    assert status == 200
    await receiver.wait_for(1)
    event = receiver.events()[0]
    assert event["content"]["booking"]["x-sim-extra"] == EXTRA
    assert "x-sim-extra" not in sim.world.bookings[body["booking"]["bookingId"]]


# ---- the bundle ----------------------------------------------------------------------
async def test_independent_bundle_switches_on_its_members(make_sim: SimFactory) -> None:
    sim = await make_sim(dialects=("independent",))
    status, booking = await sim.call("POST", "/booking", json_body=_booking_body(sim))
    assert status == 200 and "bookingId" in booking and booking["x-sim-extra"] == EXTRA
    status, body = await sim.get("/booking", {"clientId": _busiest_client(sim)})
    assert status == 400
    pages = await walk(sim, "/staff/list", {}, "staffs")
    assert all(len(page["staffs"]) == 2 for page in pages[:-1]) and "cursor" not in pages[-1]
    status, body = await sim.get("/merchant/list")
    assert body["limit"] == 10 and body["x-sim-envelope"] == 1
    status, body = await sim.get(f"/booking/{next(iter(sim.world.bookings))}")
    assert "groupEvents" not in body
    assert set(BUNDLES["independent"]) < set(NAMES)


async def test_dialects_switch_at_run_time(sim: Sim) -> None:
    await sim.control("POST", "/_sim/dialects", {"active": ["write-bare"]})
    status, body = await sim.call("POST", "/booking", json_body=_booking_body(sim))
    assert status == 200 and "bookingId" in body
    await sim.control("DELETE", "/_sim/dialects")
    status, body = await sim.call("POST", "/booking", json_body=_booking_body(sim))
    assert status == 200 and set(body) == {"booking", "groupEvents"}


# ---- forced answers ------------------------------------------------------------------
async def test_force_status_answers_every_path_in_booxi_shape(sim: Sim) -> None:
    faults = await sim.control("POST", "/_sim/faults", {"force_status": 502})
    assert faults["force_status"] == 502 and faults["force_paths"] == []
    for path in ("/staff/list", "/booking/A1", "/merchant"):
        status, body = await sim.get(path)
        assert (status, body) == (502, {"message": "forced by the simulator", "code": 502})
    async with (
        aiohttp.ClientSession() as bare,
        bare.get(sim.api + "/staff/list") as response,
    ):
        assert response.status == 401  # the key check comes first
    async with sim.session.get(sim.url + "/_sim/state") as response:
        assert response.status == 200  # control endpoints are never forced
    faults = await sim.control("DELETE", "/_sim/faults")
    assert (faults["force_status"], faults["force_paths"], faults["force_count"]) == (
        None,
        [],
        None,
    )
    assert (await sim.get("/staff/list"))[0] == 200


async def test_force_paths_and_429_retry_after(sim: Sim) -> None:
    await sim.control("POST", "/_sim/faults", {"force_status": 429, "force_paths": ["/booking"]})
    async with sim.session.get(sim.api + "/booking/A1") as response:
        assert response.status == 429 and response.headers["Retry-After"] == "1"
        assert await response.json() == {"message": "forced by the simulator", "code": 429}
    async with (
        aiohttp.ClientSession(headers={"Booxi-APIKey": MERCHANT_KEY}) as merchant,
        merchant.get(sim.api + "/booking", params={"clientId": 1}) as response,
    ):
        assert response.status == 429
    assert (await sim.get("/staff/list"))[0] == 200
    assert (await sim.get("/client", {"moduleId": "crm", "externalId": "x"}))[0] == 200


async def test_force_count_switches_itself_off(sim: Sim) -> None:
    await sim.control(
        "POST", "/_sim/faults", {"force_status": 400, "force_paths": ["/client"], "force_count": 2}
    )
    assert (await sim.get("/staff/list"))[0] == 200  # not forced: does not count
    assert (await sim.get("/client/1"))[0] == 400
    faults = await sim.control("GET", "/_sim/faults")
    assert faults["force_count"] == 1 and faults["force_status"] == 400
    assert (await sim.get("/client/1"))[0] == 400
    assert (await sim.get("/client/1"))[0] == 404
    faults = await sim.control("GET", "/_sim/faults")
    assert faults["force_status"] is None and faults["force_count"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"force_status": 200},
        {"force_status": 600},
        {"force_status": "503"},
        {"force_status": True},
        {"force_paths": "/booking"},
        {"force_paths": ["booking"]},
        {"force_paths": [1]},
        {"force_count": 0},
        {"force_count": 1.5},
        {"force_status": 503, "force_count": -1},
    ],
)
async def test_force_faults_are_validated_all_or_nothing(sim: Sim, body: dict[str, Any]) -> None:
    status, error = await sim.call("POST", sim.url + "/_sim/faults", json_body=body)
    assert status == 400 and error["code"] == 400
    faults = await sim.control("GET", "/_sim/faults")
    assert (faults["force_status"], faults["force_paths"], faults["force_count"]) == (
        None,
        [],
        None,
    )


def test_cli_sim_refuses_unknown_or_clashing_dialects() -> None:
    from click.testing import CliRunner

    from cli.main import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["sim", "--dialect", "no-such"])
    assert result.exit_code == 2 and "write-bare" in result.output
    result = runner.invoke(cli, ["sim", "--dialect", "page-size-1", "--dialect", "independent"])
    assert result.exit_code == 2 and "exclude each other" in result.output
