"""The /_sim/ control API: ground truth, random changes, determinism of the seed."""

from __future__ import annotations

import datetime as dt
import json

from simulator import SimSettings
from simulator.generate import build_world
from tests.conftest import MERCHANT_KEY, PARTNER_KEY, Sim

ANCHOR = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)


def _settings(seed: int) -> SimSettings:
    return SimSettings(
        partner_key=PARTNER_KEY,
        merchant_key=MERCHANT_KEY,
        seed=seed,
        stores=2,
        staff_per_store=3,
        clients=50,
        anchor=ANCHOR,
    )


def test_same_seed_and_anchor_give_the_same_world() -> None:
    first = json.dumps(build_world(_settings(7)).state(), sort_keys=True)
    again = json.dumps(build_world(_settings(7)).state(), sort_keys=True)
    other = json.dumps(build_world(_settings(8)).state(), sort_keys=True)
    assert first == again
    assert first != other


def test_the_world_has_every_kind_of_booking() -> None:
    world = build_world(_settings(7))
    bookings = list(world.bookings.values())
    assert {b["status"] for b in bookings} == {
        "Approved",
        "Cancelled",
        "PendingStaffApproval",
        "PendingClientApproval",
    }
    assert {b["client"]["presence"] for b in bookings} == {"Expecting", "Arrived", "NoShow"}
    assert {b["bookingMethod"] for b in bookings} == {"Appointment", "GroupReservation"}
    assert any(len(b["items"]) > 1 for b in bookings)
    assert any(b["isCompleted"] for b in bookings)
    assert {s["type"] for s in world.time_slots.values()} == {"Busy", "Available"}
    assert any(e["attendeeCount"] > 0 for e in world.group_events.values())
    assert len({m["timeZone"] for m in world.merchants.values()}) > 1
    assert world.links
    starts = sorted(b["startsOn"] for b in bookings)
    assert starts[0] >= (ANCHOR - dt.timedelta(days=31)).strftime("%Y-%m-%d")
    assert starts[-1] <= (ANCHOR + dt.timedelta(days=91)).strftime("%Y-%m-%d")


def _assert_no_overlaps(state: dict) -> None:
    by_staff: dict[int, list[tuple[str, str]]] = {}
    for booking in state["bookings"]:
        if (
            booking["status"] != "Cancelled"
            and booking["bookingMethod"] == "Appointment"
            and booking["staffId"] is not None  # a request no one has taken holds no time
        ):
            span = booking["totalClientTimespan"]
            by_staff.setdefault(booking["staffId"], []).append((span["start"], span["end"]))
    for spans in by_staff.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, "two live appointments of one staff member overlap"


async def test_state_lists_every_kind_of_object(sim: Sim) -> None:
    state = await sim.control("GET", "/_sim/state")
    assert {"merchants", "staff", "services", "serviceCategories", "clients", "bookings"} <= set(
        state
    )
    assert len(state["merchants"]) == 2 and len(state["staff"]) == 6
    assert len(state["bookings"]) == len(sim.world.bookings)
    _assert_no_overlaps(state)


async def test_mutate_changes_exactly_the_bookings_it_names(sim: Sim) -> None:
    before = {b["bookingId"]: b for b in (await sim.control("GET", "/_sim/state"))["bookings"]}
    answer = await sim.control("POST", "/_sim/mutate", {"count": 150, "seed": 11})
    assert set(answer) == {"changed"}
    changed = answer["changed"]
    assert len(changed) == len(set(changed)) == 150
    after = {b["bookingId"]: b for b in (await sim.control("GET", "/_sim/state"))["bookings"]}
    differing = {i for i in after if before.get(i) != after[i]}
    assert differing == set(changed)
    new = set(after) - set(before)
    assert new and new <= set(changed)
    for booking_id in set(changed) - new:
        assert after[booking_id]["modifiedOn"] > before[booking_id]["modifiedOn"]
    kinds = set()
    for booking_id in set(changed) - new:
        old, now = before[booking_id], after[booking_id]
        if now["status"] == "Cancelled" != old["status"]:
            kinds.add("cancel")
        elif now["staffId"] != old["staffId"]:
            kinds.add("reassign")
        elif now["startsOn"] != old["startsOn"]:
            kinds.add("reschedule")
        elif now["client"]["presence"] != old["client"]["presence"]:
            kinds.add("presence")
    assert kinds == {"cancel", "reassign", "reschedule", "presence"}
    _assert_no_overlaps(await sim.control("GET", "/_sim/state"))


async def test_mutate_validates_its_body(sim: Sim) -> None:
    for body in ({}, {"count": 0}, {"count": "3"}, {"count": 2, "seed": "x"}, {"count": 10**6}):
        async with sim.session.post(sim.url + "/_sim/mutate", json=body) as response:
            assert response.status == 400, body
            assert (await response.json())["code"] == 400
