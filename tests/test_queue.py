"""A store's dispatch queue (``GET /mirror/v1/stores/{merchantId}/queue``, issue #12)
and dispatching through the mirror: against the simulator over loopback, answers
compared with what the simulator (Booxi) holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from api.dispatch_queue import QueueError, dispatch, queue_answer
from mirror.poller import Window
from mirror.store_queue import poll_store_queue
from mirror.sync import run_pass
from storage.times import instant_key
from tests.conftest import (
    API_KEY,
    WEBHOOK_SECRET,
    MirrorApp,
    Sim,
    Store,
    booxi_client,
    calendar_params,
    rfc3339,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
HORIZON_DAYS = 21
PENDING = ("PendingStaffApproval", "PendingClientApproval")


def queued(sim: Sim, merchant_id: int, start: str, end: str) -> list[dict[str, Any]]:
    """What Booxi (the simulator's world) holds in the store's queue over the range, oldest
    request first: the answer the mirror must give."""
    found = [
        b
        for b in sim.world.bookings.values()
        if b["merchantId"] == merchant_id
        and b["bookingMethod"] == "Appointment"
        and b["status"] != "Cancelled"
        and (not b.get("staffId") or b["status"] in PENDING)
        and start <= instant_key(b["startsOn"]) <= end
    ]
    return sorted(found, key=lambda b: (instant_key(b["createdOn"]), b["bookingId"]))


async def get(
    session: aiohttp.ClientSession, url: str, params: Any = None, headers: Any = None
) -> tuple[int, Any, Any]:
    async with session.get(url, params=params, headers=headers or AUTH) as response:
        return response.status, await response.json(), response.headers


async def all_pages(session: aiohttp.ClientSession, url: str, params: Any = None) -> list[Any]:
    status, body, _ = await get(session, url, params)
    assert status == 200, body
    items = list(body["bookings"])
    while body["cursor"]:
        status, body, _ = await get(session, url, {"cursor": body["cursor"]})
        assert status == 200, body
        items += body["bookings"]
    return items


def queue_url(app: MirrorApp, merchant_id: int) -> str:
    return f"{app.url}/mirror/v1/stores/{merchant_id}/queue"


def window(now: dt.datetime) -> tuple[str, str]:
    return instant_key(now), instant_key(now + dt.timedelta(days=HORIZON_DAYS))


@pytest.fixture
async def synced(make_sim, store: Store, make_mirror_app) -> Any:
    """A simulator, a mirror filled by one pass (queues included), and the app."""
    sim = await make_sim(days_before=8, days_after=30)
    client = booxi_client(sim)
    result = await run_pass(client, store.writer, store.engine, horizon_days=HORIZON_DAYS)
    assert result.ok and result.queues and not result.queue_failures
    app = await make_mirror_app(
        booxi=client,
        sync={"horizon_days": HORIZON_DAYS},
        api={
            "page_size": 3,
            "keys": [{"name": "all", "key": API_KEY, "scopes": ["read", "write"]}],
        },
    )
    yield sim, app, client
    await client.close()


@pytest.mark.both_engines
async def test_queue_lists_unassigned_and_pending_requests_oldest_first(synced) -> None:
    sim, app, _ = synced
    now = dt.datetime.now(dt.UTC)
    async with aiohttp.ClientSession() as session:
        for merchant_id in sorted(sim.world.merchants):
            expected = queued(sim, merchant_id, *window(now))
            got = await all_pages(session, queue_url(app, merchant_id))
            assert got == expected
        everything = [b for m in sim.world.merchants for b in queued(sim, m, "", "~")]
        assert any(b["staffId"] is None for b in everything)  # the test can tell them apart
        assert any(b["staffId"] is not None for b in everything)
        status, body, headers = await get(session, queue_url(app, min(sim.world.merchants)))
    assert status == 200
    assert set(body) == {"bookings", "services", "staff", "merchants", "cursor"}
    assert headers["Cache-Status"] == "booxi-mirror; hit"
    assert int(headers["Age"]) >= 0 and headers["X-Mirror-Synced-At"].endswith("Z")
    assert [m["id"] for m in body["merchants"]] == [min(sim.world.merchants)]
    service_ids = {i["serviceId"] for b in body["bookings"] for i in b["items"]}
    assert {s["id"] for s in body["services"]} == service_ids


async def test_queue_range_filters_the_requested_time(synced) -> None:
    sim, app, _ = synced
    merchant_id = min(sim.world.merchants)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=6)
    end = start + dt.timedelta(days=9)
    params = {"from": rfc3339(start), "to": rfc3339(end)}
    async with aiohttp.ClientSession() as session:
        got = await all_pages(session, queue_url(app, merchant_id), params)
        status, body, headers = await get(session, queue_url(app, merchant_id), params)
        assert got == queued(
            sim, merchant_id, instant_key(rfc3339(start)), instant_key(rfc3339(end))
        )
        assert status == 200 and "X-Mirror-Coverage" not in headers
        far = {"from": rfc3339(start - dt.timedelta(days=30)), "to": rfc3339(end)}
        status, body, headers = await get(session, queue_url(app, merchant_id), far)
        assert (status, headers["X-Mirror-Coverage"]) == (200, "partial")
        for bad in (
            {"from": "yesterday"},
            {"to": "2026-13-01T00:00:00Z"},
            {**params, "from": rfc3339(end + dt.timedelta(days=1))},
        ):
            status, body, _ = await get(session, queue_url(app, merchant_id), bad)
            assert status == 400 and body["error"]["code"] == "bad_request", bad


async def test_queue_pages_follow_a_cursor_sent_alone(synced) -> None:
    sim, app, _ = synced
    now = dt.datetime.now(dt.UTC)
    lo, hi = now - dt.timedelta(days=6), now + dt.timedelta(days=HORIZON_DAYS)
    far = {"from": rfc3339(lo), "to": rfc3339(hi)}
    keys = (instant_key(far["from"]), instant_key(far["to"]))
    merchant_id = max(sim.world.merchants, key=lambda m: len(queued(sim, m, *keys)))
    expected = queued(sim, merchant_id, *keys)
    assert len(expected) > 3  # several pages of 3
    url = queue_url(app, merchant_id)
    async with aiohttp.ClientSession() as session:
        status, first, _ = await get(session, url, far)
        assert status == 200 and len(first["bookings"]) == 3 and first["cursor"]
        assert await all_pages(session, url, far) == expected
        status, body, _ = await get(session, url, {"cursor": first["cursor"], "from": far["from"]})
        assert status == 400 and "alone" in body["error"]["message"]
        other = queue_url(app, min(m for m in sim.world.merchants if m != merchant_id))
        status, body, _ = await get(session, other, {"cursor": first["cursor"]})
        assert status == 400 and body["error"]["status"] == 400
        status, body, _ = await get(session, url, {"cursor": first["cursor"][:-2]})
        assert status == 400


async def test_queue_is_scoped_to_the_keys_stores(make_sim, store: Store, make_mirror_app) -> None:
    sim = await make_sim()
    client = booxi_client(sim)
    assert (await run_pass(client, store.writer, store.engine, horizon_days=HORIZON_DAYS)).ok
    mine, theirs = sorted(sim.world.merchants)
    keys = [
        {"name": "mine", "key": "mine-key-0123456789abcdef", "merchant_ids": [mine]},
        {"name": "write-only", "key": "write-key-0123456789abcdef", "scopes": ["write"]},
        {
            "name": "public",
            "key": "public-key-0123456789abcdef",
            "merchant_ids": [mine],
            "kind": "merchant",
        },
    ]
    app = await make_mirror_app(booxi=client, api={"keys": keys})
    mine_key = {"Authorization": "Bearer mine-key-0123456789abcdef"}
    async with aiohttp.ClientSession() as session:
        status, body, _ = await get(session, queue_url(app, mine), headers=mine_key)
        assert status == 200
        status, other, _ = await get(session, queue_url(app, theirs), headers=mine_key)
        status_unknown, unknown, _ = await get(session, queue_url(app, 999_999), headers=mine_key)
        assert (status, status_unknown) == (404, 404)
        assert other["error"]["message"] == unknown["error"]["message"].replace(
            "999999", str(theirs)
        )
        assert set(other) == {"error"} and other["error"]["code"] == "not_found"
        for headers, code in (
            ({}, 401),
            ({"Authorization": "Bearer nope"}, 401),
            ({"Authorization": "Bearer write-key-0123456789abcdef"}, 403),
            ({"Booxi-APIKey": "public-key-0123456789abcdef"}, 403),
        ):
            status, body, _ = await get(
                session, queue_url(app, mine), headers=headers or {"X": "1"}
            )
            assert (status, body["error"]["status"]) == (code, code), headers
        status, body, _ = await get(session, queue_url(app, 0), headers=mine_key)
        assert status == 400
    await client.close()


async def test_dispatch_takes_a_request_off_the_queue_onto_the_calendar_at_once(synced) -> None:
    sim, app, _ = synced
    now = dt.datetime.now(dt.UTC)
    merchant_id, request = next(
        (m, b)
        for m in sorted(sim.world.merchants)
        for b in queued(sim, m, *window(now))
        if b["staffId"] is None
    )
    span = request["totalClientTimespan"]
    store_staff = sorted(
        s["id"] for s in sim.world.staff.values() if s["merchantId"] == merchant_id
    )
    busy = [s for s in store_staff if sim.world.conflict_for(s, span["start"], span["end"])]
    free = [s for s in store_staff if s not in busy]
    assert free, "a free staff member to dispatch to"
    url = f"{app.url}/booking/v1/booking/{request['bookingId']}"
    async with aiohttp.ClientSession() as session:
        if busy:
            async with session.put(
                url, json={"staffId": busy[0], "status": "Approved"}, headers=AUTH
            ) as response:
                refused = await response.json()
                assert response.status == 409 and refused["error"].endswith("Conflict")
        async with session.put(
            url, json={"staffId": free[0], "status": "Approved"}, headers=AUTH
        ) as response:
            assert response.status == 200
        ids = [b["bookingId"] for b in await all_pages(session, queue_url(app, merchant_id))]
        assert request["bookingId"] not in ids
        start = dt.datetime.fromisoformat(span["start"].replace("Z", "+00:00"))
        params = calendar_params(
            free[0], start - dt.timedelta(hours=1), start + dt.timedelta(hours=1)
        )
        status, calendar, _ = await get(session, f"{app.url}/booking/v1/calendar", params)
        assert status == 200
        assert request["bookingId"] in {e["bookingId"] for e in calendar["calendarEvents"]}
        assert await all_pages(session, queue_url(app, merchant_id)) == queued(
            sim, merchant_id, *window(now)
        )


async def test_queue_answer_and_dispatch_are_the_routes_for_the_dashboard(synced) -> None:
    sim, app, _ = synced
    now = dt.datetime.now(dt.UTC)
    merchant_id = min(sim.world.merchants)
    server_app = app.server.app
    request = make_mocked_request("GET", "/dashboard", headers=AUTH, app=server_app)
    answer = await queue_answer(request, merchant_id)
    async with aiohttp.ClientSession() as session:
        status, body, _ = await get(session, queue_url(app, merchant_id), {"from": rfc3339(now)})
    assert answer["cursor"] is None
    assert answer["bookings"] == queued(sim, merchant_id, *window(now))
    assert answer["bookings"][:3] == body["bookings"]
    with pytest.raises(QueueError) as refused:
        await queue_answer(make_mocked_request("GET", "/dashboard", app=server_app), merchant_id)
    assert refused.value.status == 401
    with pytest.raises(QueueError) as refused:
        await queue_answer(request, merchant_id, start="soon")
    assert refused.value.status == 400

    target = next(b for b in answer["bookings"] if b["staffId"] is None)
    span = target["totalClientTimespan"]
    staff = sorted(s["id"] for s in sim.world.staff.values() if s["merchantId"] == merchant_id)
    busy = [s for s in staff if sim.world.conflict_for(s, span["start"], span["end"])]
    free = [s for s in staff if s not in busy]
    write = make_mocked_request("POST", "/dashboard/dispatch", headers=AUTH, app=server_app)
    if busy:
        with pytest.raises(QueueError) as refused:
            await dispatch(write, target["bookingId"], staff_id=busy[0], status="Approved")
        assert refused.value.status == 409 and "not free" in refused.value.message
        assert refused.value.response().status == 409
    updated = await dispatch(write, target["bookingId"], staff_id=free[0], status="Approved")
    assert updated == sim.world.bookings[target["bookingId"]]
    assert (updated["staffId"], updated["status"]) == (free[0], "Approved")
    after = await queue_answer(request, merchant_id)
    assert target["bookingId"] not in {b["bookingId"] for b in after["bookings"]}
    declined = next(b for b in after["bookings"] if b["status"] == "PendingStaffApproval")
    got = await dispatch(write, declined["bookingId"], status="Cancelled")
    assert got["status"] == "Cancelled"
    assert (await queue_answer(request, merchant_id))["bookings"] == queued(
        sim, merchant_id, *window(now)
    )
    with pytest.raises(QueueError) as refused:
        await dispatch(write, target["bookingId"])
    assert refused.value.status == 400
    with pytest.raises(QueueError) as refused:
        await dispatch(write, "A999999999", status="Approved")
    assert refused.value.status == 404


@pytest.mark.both_engines
@pytest.mark.parametrize(
    "dialects",
    [(), ("unassigned-absent",), ("unassigned-zero",), ("booking-list-client-only",)],
    ids=["null", "absent", "zero", "client-only"],
)
async def test_queue_equals_booxi_after_random_mutations(
    make_sim, store: Store, make_mirror_app, dialects: tuple[str, ...]
) -> None:
    """Webhooks (and, where Booxi lists a store's bookings, the queue poll) keep the queue
    equal to what Booxi holds through random changes: new requests, dispatches,
    reschedules, cancellations."""
    app = await make_mirror_app(sync={"horizon_days": 60})
    sim = await make_sim(
        days_before=3,
        days_after=20,
        webhook_urls=(app.webhook_url,),
        webhook_secret=WEBHOOK_SECRET,
        dialects=dialects,
    )
    client = booxi_client(sim)
    result = await run_pass(client, store.writer, store.engine, horizon_days=60)
    assert result.ok
    client_only = "booking-list-client-only" in dialects
    assert bool(result.queue_failures) == client_only
    # where Booxi does not list a store's bookings, the requests no one has taken before
    # the mirror started are beyond its sight until they change (then a webhook tells)
    unseen = {b["bookingId"] for b in sim.world.bookings.values() if b["staffId"] is None}
    seen: set[str] = set()
    now = dt.datetime.now(dt.UTC)
    lo, hi = now - dt.timedelta(days=7), now + dt.timedelta(days=60)
    params = {"from": rfc3339(lo), "to": rfc3339(hi)}
    async with aiohttp.ClientSession() as session:

        async def same(merchant_id: int) -> None:
            expected = [
                _as_sent(b, dialects)
                for b in queued(
                    sim, merchant_id, instant_key(params["from"]), instant_key(params["to"])
                )
                if not client_only or b["bookingId"] not in unseen or b["bookingId"] in seen
            ]
            got = await all_pages(session, queue_url(app, merchant_id), params)
            assert [b["bookingId"] for b in got] == [b["bookingId"] for b in expected]
            assert got == expected

        for seed in (1, 2, 3):
            body = {"count": 25, "seed": seed}
            changed = (await sim.control("POST", "/_sim/mutate", body))["changed"]
            seen.update(changed)
            await sim.control("POST", "/_sim/webhooks/drain")
            for merchant_id in sorted(sim.world.merchants):
                await same(merchant_id)  # webhooks alone
                if not client_only:  # and the queue poll agrees
                    polled = await poll_store_queue(
                        client, store.writer, merchant_id, Window(lo, hi)
                    )
                    assert polled.error is None
                    await same(merchant_id)
        assert any(
            b["staffId"] is None for b in sim.world.bookings.values() if b["bookingId"] in seen
        )
        status, _, headers = await get(session, queue_url(app, min(sim.world.merchants)))
        assert headers["Cache-Status"] == (
            "booxi-mirror; hit; detail=stale" if client_only else "booxi-mirror; hit"
        )
    await client.close()


def _as_sent(booking: dict[str, Any], dialects: tuple[str, ...]) -> dict[str, Any]:
    """A booking as the simulator's dialect sends it (the mirror keeps it as sent)."""
    if booking.get("staffId") is not None:
        return booking
    if "unassigned-absent" in dialects:
        return {
            k: v
            for k, v in booking.items()
            if k not in ("staffId", "staffFirstName", "staffLastName")
        }
    if "unassigned-zero" in dialects:
        return {**booking, "staffId": 0, "staffFirstName": "", "staffLastName": ""}
    return booking


async def test_metrics_count_each_stores_queue(synced) -> None:
    sim, app, _ = synced
    now = dt.datetime.now(dt.UTC)
    async with aiohttp.ClientSession() as session, session.get(app.url + "/metrics") as response:
        text = await response.text()
    for merchant_id in sim.world.merchants:
        size = len(queued(sim, merchant_id, *window(now)))
        assert f'booxi_mirror_queue_size{{merchant_id="{merchant_id}"}} {float(size)}' in text


async def test_a_store_never_polled_is_fetched_on_the_first_read(
    make_sim, store: Store, make_mirror_app
) -> None:
    sim = await make_sim()
    client = booxi_client(sim)
    staff = sorted(sim.world.staff)
    # reference data and calendars, no queue (a pass for some staff polls no store)
    assert (
        await run_pass(
            client, store.writer, store.engine, horizon_days=HORIZON_DAYS, staff_ids=staff
        )
    ).ok
    offline = await make_mirror_app(sync={"horizon_days": HORIZON_DAYS})
    merchant_id = min(sim.world.merchants)
    now = dt.datetime.now(dt.UTC)
    async with aiohttp.ClientSession() as session:
        status, body, headers = await get(session, queue_url(offline, merchant_id))
        assert status == 200 and headers["Cache-Status"] == "booxi-mirror; hit; detail=stale"
        assert "X-Mirror-Synced-At" not in headers
        assert all(b["staffId"] is not None for b in body["bookings"])  # calendars only
        app = await make_mirror_app(booxi=client, sync={"horizon_days": HORIZON_DAYS})
        status, body, headers = await get(session, queue_url(app, merchant_id))
        assert (status, headers["Cache-Status"]) == (200, "booxi-mirror; fwd=uri-miss; stored")
        assert await all_pages(session, queue_url(app, merchant_id)) == queued(
            sim, merchant_id, *window(now)
        )
        status, body, headers = await get(session, queue_url(app, merchant_id))
        assert headers["Cache-Status"] == "booxi-mirror; hit"
        etag = headers["ETag"]
        async with session.get(
            queue_url(app, merchant_id), headers={**AUTH, "If-None-Match": etag}
        ) as response:
            assert response.status == 304
    await client.close()
