"""The main journeys through the mirror, against every dialect the simulator plays.

Our simulator is one reading of Booxi's documentation; each dialect plays another
plausible reading where the docs say "unknown" (``simulator.dialects``). For each: a
sync pass, calendars, a client's history, the booking form's lookups, booking then
rescheduling then cancelling with read-your-writes, and webhooks; every answer the
mirror gives equals Booxi's (items compared across pages; page sizes may differ).
"""

from __future__ import annotations

import datetime as dt

import aiohttp
import pytest

from mirror.sync import run_pass
from tests.conftest import WEBHOOK_SECRET, Sim, Store, booxi_client, calendar_params
from tests.differential import Both

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DIALECTS = [
    (),
    ("write-bare",),
    ("history-range-required",),
    ("page-size-1",),
    ("page-size-2",),
    ("page-size-50",),
    ("offset-limit-10",),
    ("cursor-absent",),
    ("cursor-empty",),
    ("lists-null",),
    ("unknown-fields",),
    ("independent",),
]


def wire(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _free_start(sim: Sim, staff_id: int, start: dt.datetime, ignore: str | None = None) -> str:
    while sim.world.conflict_for(
        staff_id, wire(start), wire(start + dt.timedelta(hours=2)), ignore=ignore
    ):
        start += dt.timedelta(minutes=30)
    return wire(start)


@pytest.mark.parametrize("dialects", DIALECTS, ids=lambda d: "+".join(d) or "default")
async def test_main_journeys_through_the_mirror_in_every_dialect(
    dialects: tuple[str, ...], make_sim, store: Store, make_mirror_app
) -> None:
    placeholder = await make_mirror_app()
    sim = await make_sim(
        dialects=dialects,
        days_before=8,
        days_after=10,
        clients=30,
        webhook_urls=(placeholder.webhook_url,),
        webhook_secret=WEBHOOK_SECRET,
    )
    client = booxi_client(sim)
    # sync: one pass fills the mirror
    assert (await run_pass(client, store.writer, store.engine, horizon_days=10)).ok
    app = await make_mirror_app(booxi=client)
    # the simulator's webhooks go to the placeholder, which shares the store
    async with aiohttp.ClientSession() as session:
        both = Both(sim, app.url, session)
        staff = next(iter(sim.world.staff.values()))
        # calendar, one staff member's week
        week = calendar_params(staff["id"], NOW, NOW + dt.timedelta(days=7))
        await both.same_pages("/calendar", week)
        # a client's history, with the range Booxi's guide asks for
        booking = next(
            b
            for b in sim.world.bookings.values()
            if b["client"].get("id") and b["merchantId"] == staff["merchantId"]
        )
        client_id = booking["client"]["id"]
        history = {
            "clientId": str(client_id),
            "from": wire(NOW - dt.timedelta(days=30)),
            "to": wire(NOW + dt.timedelta(days=30)),
        }
        await both.same_pages("/booking", history)
        status, _ = await both.one("mirror", "GET", "/booking", params={"clientId": client_id})
        assert status == 200  # the mirror asks Booxi with a range even when none is given
        # the booking form's lookups
        status, merchant = await both.one(
            "booxi", "GET", "/merchant", params={"merchantId": staff["merchantId"]}
        )
        store_id = {"merchantId": str(staff["merchantId"])}
        await both.same_offset_list("/serviceCategory", store_id)
        services = await both.same_offset_list(
            "/service", {**store_id, "staffId": str(staff["id"])}
        )
        service = next(s for s in services if s["bookingMethod"] == "Appointment")
        await both.same_offset_list("/staff", {**store_id, "serviceId": str(service["id"])})
        await both.same_offset_list("/serviceCustomization", {"serviceId": str(service["id"])})
        link = next(
            link for (staff_id, _), link in sim.world.staff_links.items() if staff_id == staff["id"]
        )
        found = await both.same_pages(
            "/staff/list", {"moduleId": link["moduleId"], "externalId": link["externalId"]}
        )
        assert [s["id"] for s in found["staffs"]] == [staff["id"]]
        # book, reschedule, cancel: each read through the mirror shows Booxi's version
        start = _free_start(sim, staff["id"], (NOW + dt.timedelta(days=2)).replace(minute=0))
        status, created = await both.one(
            "mirror",
            "POST",
            "/booking",
            json={
                "merchantId": staff["merchantId"],
                "bookingMethod": "Appointment",
                "startsOn": start,
                "status": "Approved",
                "staffId": staff["id"],
                "items": [{"serviceId": service["id"]}],
                "client": {"id": client_id},
            },
        )
        assert status == 200, created
        booking_id = (created.get("booking") or created)["bookingId"]
        await _read_your_write(both, booking_id, staff["id"])
        moved = _free_start(
            sim,
            staff["id"],
            dt.datetime.strptime(start, "%Y-%m-%dT%H:%M:%S%z") + dt.timedelta(hours=3),
            booking_id,
        )
        status, _ = await both.one(
            "mirror", "PUT", f"/booking/{booking_id}", json={"startsOn": moved}
        )
        assert status == 200
        await _read_your_write(both, booking_id, staff["id"])
        status, _ = await both.one(
            "mirror", "PUT", f"/booking/{booking_id}", json={"status": "Cancelled"}
        )
        assert status == 200
        await _read_your_write(both, booking_id, staff["id"])
        # webhooks: Booxi's changes reach the mirror without a poll
        changed = (await sim.control("POST", "/_sim/mutate", {"count": 8, "seed": 5}))["changed"]
        await sim.control("POST", "/_sim/webhooks/drain")
        for changed_id in dict.fromkeys(changed):
            _, booxi = await both.one("booxi", "GET", f"/booking/{changed_id}")
            _, mirror = await both.one("mirror", "GET", f"/booking/{changed_id}")
            assert booxi["booking"] == mirror["booking"], changed_id
    await client.close()


async def _read_your_write(both: Both, booking_id: str, staff_id: int) -> None:
    """Right after a write: the booking as Booxi has it, and the staff member's calendar
    with Booxi's own event ids (no provisional ones)."""
    _, booxi = await both.one("booxi", "GET", f"/booking/{booking_id}")
    status, mirror = await both.one("mirror", "GET", f"/booking/{booking_id}")
    assert status == 200 and mirror["booking"] == booxi["booking"]
    window = calendar_params(staff_id, NOW, NOW + dt.timedelta(days=7))
    calendar = await both.same_pages("/calendar", window)
    assert all(isinstance(e["id"], int) and e["id"] > 0 for e in calendar["calendarEvents"])
