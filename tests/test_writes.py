"""Write-through over real sockets: the simulator as Booxi, the mirror in front of it.

Booxi's answers come back byte for byte, successes are in storage before the response
leaves, nothing is stored or sent when Booxi is down or the key may not, and an
``Idempotency-Key`` books once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from sqlalchemy.engine import Connection

from mirror.budget import RateBudget
from mirror.client import BooxiClient
from mirror.poller import refresh_reference_data
from storage import idempotency
from tests.conftest import API_KEY, MirrorApp, Sim, Store, booxi_client, rfc3339

STORE_A, STORE_B = 34538, 34621
STAFF_A, STAFF_B = 21002, 21114
SERVICE_A, SERVICE_B = 3453800, 3462100
pytestmark = pytest.mark.both_engines

KEY_A = "mirror-key-for-store-a-0123456789"
READ_KEY = "mirror-read-only-key-0123456789"
KEYS = [
    {"name": "all", "key": API_KEY, "scopes": ["read", "write"]},
    {"name": "a", "key": KEY_A, "merchant_ids": [STORE_A], "scopes": ["read", "write"]},
    {"name": "reader", "key": READ_KEY, "scopes": ["read"]},
]
MIRRORED = ("booking", "calendar_event", "group_event", "client", "module_link")


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass
class Env:
    sim: Sim
    app: MirrorApp
    store: Store
    session: aiohttp.ClientSession

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str = API_KEY,
        headers: dict[str, str] | None = None,
        params: Any = None,
    ) -> Answer:
        """The mirror's answer; ``body`` is sent as JSON unless given as bytes."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        async with self.session.request(
            method,
            self.app.url + "/booking/v1" + path,
            data=data,
            params=params,
            headers={"Authorization": f"Bearer {key}", **(headers or {})},
        ) as response:
            return Answer(response.status, dict(response.headers), await response.read())

    async def booxi(self, method: str, path: str, body: Any = None, params: Any = None) -> Answer:
        """The simulator's own answer to the same request."""
        data = None if body is None else json.dumps(body).encode()
        async with self.sim.session.request(
            method, self.sim.api + path, data=data, params=params
        ) as response:
            return Answer(response.status, dict(response.headers), await response.read())

    async def booxi_requests(self) -> list[dict[str, Any]]:
        return list((await self.sim.control("GET", "/_sim/requests"))["requests"])

    async def snapshot(self, tables: tuple[str, ...] = MIRRORED) -> dict[str, list[str]]:
        """Every row of ``tables``, as sorted text: equal snapshots, equal storage."""
        return {
            table: sorted(
                repr(dict(row)) for row in await self.store.rows(f"SELECT * FROM {table}")
            )
            for table in tables
        }


@pytest.fixture
async def env(make_sim, store: Store, make_mirror_app) -> AsyncIterator[Env]:
    sim = await make_sim()
    booxi = booxi_client(sim)
    app = await make_mirror_app(booxi=booxi, api={"keys": KEYS})
    async with aiohttp.ClientSession() as session:
        yield Env(sim, app, store, session)
    await booxi.close()


def _free_start(sim: Sim, staff_id: int, minutes: int = 60, days: int = 30) -> dt.datetime:
    """A start, ``days`` ahead or later, when the staff member is free for ``minutes``."""
    day = dt.datetime.now(dt.UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    for hours in range(days * 24, days * 24 + 2000):
        start = day + dt.timedelta(hours=hours)
        end = start + dt.timedelta(minutes=minutes)
        if sim.world.conflict_for(staff_id, rfc3339(start), rfc3339(end)) is None:
            return start
    raise AssertionError("no free time found")


def _client_of(sim: Sim, merchant_id: int) -> int:
    return next(c["id"] for c in sim.world.clients.values() if c["merchantId"] == merchant_id)


def _booking_body(
    sim: Sim, start: dt.datetime, merchant_id: int = STORE_A, staff_id: int = STAFF_A
) -> dict[str, Any]:
    service = SERVICE_A if merchant_id == STORE_A else SERVICE_B
    return {
        "merchantId": merchant_id,
        "bookingMethod": "Appointment",
        "startsOn": rfc3339(start),
        "status": "Approved",
        "staffId": staff_id,
        "items": [{"serviceId": service}],
        "client": {"id": _client_of(sim, merchant_id)},
    }


async def _stored_booking(env: Env, booking_id: str) -> tuple[dict[str, Any], list[Any]]:
    rows = await env.store.rows("SELECT * FROM booking WHERE booking_id = :b", b=booking_id)
    assert len(rows) == 1, f"booking {booking_id} is not stored"
    events = await env.store.rows(
        "SELECT * FROM calendar_event WHERE booking_id = :b ORDER BY starts_on", b=booking_id
    )
    return dict(rows[0]), events


# ---- bookings ---------------------------------------------------------------------


async def test_booking_created_rescheduled_and_cancelled_is_stored_at_once(env: Env) -> None:
    start = _free_start(env.sim, STAFF_A)
    created = await env.call("POST", "/booking", _booking_body(env.sim, start))
    assert created.status == 200, created.body
    booking = created.json()["booking"]
    booking_id = booking["bookingId"]
    assert created.json() == (await env.booxi("GET", f"/booking/{booking_id}")).json()
    row, events = await _stored_booking(env, booking_id)
    assert json.loads(row["raw"]) == booking
    assert (row["status"], row["source"], row["merchant_id"], row["staff_id"]) == (
        "Approved",
        "write",
        STORE_A,
        STAFF_A,
    )
    assert [(e["staff_id"], e["starts_on"][:19], e["type"]) for e in events] == [
        (STAFF_A, rfc3339(start)[:19], "Appointment")
    ]

    later = _free_start(env.sim, STAFF_A, days=45)
    moved = await env.call("PUT", f"/booking/{booking_id}", {"startsOn": rfc3339(later)})
    assert moved.status == 200, moved.body
    row, events = await _stored_booking(env, booking_id)
    assert json.loads(row["raw"]) == moved.json()["booking"]
    assert row["starts_on"].startswith(rfc3339(later)[:19])
    assert [e["starts_on"][:19] for e in events] == [rfc3339(later)[:19]]

    cancelled = await env.call("PUT", f"/booking/{booking_id}", {"status": "Cancelled"})
    assert cancelled.status == 200, cancelled.body
    row, events = await _stored_booking(env, booking_id)
    assert (row["status"], events) == ("Cancelled", [])
    assert json.loads(row["raw"]) == env.sim.world.bookings[booking_id]


async def test_booxi_answers_come_back_unchanged_conflicts_and_rejections_included(
    env: Env,
) -> None:
    start = _free_start(env.sim, STAFF_A)
    body = _booking_body(env.sim, start)
    first = await env.call("POST", "/booking", body)
    assert first.status == 200
    before = await env.snapshot()

    conflict = await env.call("POST", "/booking", body)  # the same time again
    direct = await env.booxi("POST", "/booking", body)
    assert (conflict.status, conflict.body) == (direct.status, direct.body)
    assert conflict.status == 409 and conflict.json()["error"] == "BookingConflict"
    assert conflict.headers["Content-Type"] == direct.headers["Content-Type"]

    rejected_body = dict(body, status="Cancelled")
    rejected = await env.call("POST", "/booking", rejected_body)
    direct = await env.booxi("POST", "/booking", rejected_body)
    assert rejected.status == 400
    assert (rejected.body, rejected.headers["Content-Type"]) == (
        direct.body,
        direct.headers["Content-Type"],
    )

    unknown = await env.call("PUT", "/booking/A99999999", {"status": "Cancelled"})
    assert unknown.status == 404
    assert (
        unknown.body == (await env.booxi("PUT", "/booking/A99999999", {"status": "Cancelled"})).body
    )
    assert await env.snapshot() == before


# ---- clients, links, availability ---------------------------------------------------


async def test_client_create_update_link_and_delete_are_stored_and_removed(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api.writes")
    email = "grace.write@example.org"
    new = {"merchantId": STORE_A, "firstName": "Grace", "lastName": "Write", "email": email}
    created = await env.call("POST", "/client", new)
    assert created.status == 200, created.body
    client = created.json()["client"]
    client_id = client["id"]
    rows = await env.store.rows("SELECT * FROM client WHERE id = :c", c=client_id)
    assert [(r["merchant_id"], r["email"], r["source"], json.loads(r["raw"])) for r in rows] == [
        (STORE_A, email, "write", client)
    ]

    updated = await env.call("PUT", f"/client/{client_id}", {"lastName": "Wrote"})
    assert updated.status == 200, updated.body
    assert updated.json() == (await env.booxi("GET", f"/client/{client_id}")).json()
    rows = await env.store.rows("SELECT last_name, raw FROM client WHERE id = :c", c=client_id)
    assert [(r["last_name"], json.loads(r["raw"])) for r in rows] == [
        ("wrote", updated.json()["client"])
    ]

    linked = await env.call("PUT", f"/client/{client_id}/moduleLink/crm", {"externalId": "CUST-77"})
    assert linked.status == 200, linked.body
    links = await env.store.rows("SELECT * FROM module_link WHERE entity_id = :c", c=client_id)
    assert [(r["module_id"], r["external_id"], json.loads(r["raw"])) for r in links] == [
        ("crm", "CUST-77", linked.json()["link"])
    ]

    deleted = await env.call("DELETE", f"/client/{client_id}")
    assert (deleted.status, deleted.body) == (204, b"")
    assert await env.store.rows("SELECT id FROM client WHERE id = :c", c=client_id) == []
    assert await env.store.rows("SELECT 1 FROM module_link WHERE entity_id = :c", c=client_id) == []

    forwarded = [r for r in caplog.records if r.getMessage() == "write.forwarded"]
    assert [(r.method, r.route, r.status, r.stored) for r in forwarded] == [  # type: ignore[attr-defined]
        ("POST", "client-create", 200, True),
        ("PUT", "client-update", 200, True),
        ("PUT", "client-module-link-update", 200, True),
        ("DELETE", "client-delete", 204, True),
    ]
    assert all(isinstance(r.duration_ms, float) for r in forwarded)  # type: ignore[attr-defined]
    logged = " ".join(repr(vars(r)) for r in caplog.records)
    assert email not in logged and "Grace" not in logged and API_KEY not in logged


async def test_client_with_future_bookings_is_kept_when_booxi_refuses_the_delete(
    env: Env,
) -> None:
    start = _free_start(env.sim, STAFF_A)
    booked = await env.call("POST", "/booking", _booking_body(env.sim, start))
    client = booked.json()["booking"]["client"]["id"]
    await env.call("PUT", f"/client/{client}", {"quickNote": "kept"})  # stores the client
    refused = await env.call("DELETE", f"/client/{client}")
    assert refused.status == 409 and refused.json()["error"] == "ClientHasFutureBookings"
    assert len(await env.store.rows("SELECT id FROM client WHERE id = :c", c=client)) == 1


async def test_availability_is_passed_through_live(env: Env) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    span = {"from": rfc3339(start), "to": rfc3339(start + dt.timedelta(days=3))}
    path = f"/service/{SERVICE_A}/availability"
    mirrored = await env.call("GET", path, params=span)
    direct = await env.booxi("GET", path, params=span)
    assert (mirrored.status, mirrored.body) == (200, direct.body)
    cursor = mirrored.json()["cursor"]
    assert cursor, "the page size makes this answer paged"
    page_two = await env.call("GET", path, params={"cursor": cursor})
    assert page_two.body == (await env.booxi("GET", path, params={"cursor": cursor})).body

    too_long = {"from": span["from"], "to": rfc3339(start + dt.timedelta(days=40))}
    mirrored = await env.call("GET", path, params=too_long)
    assert mirrored.status == 400
    assert mirrored.body == (await env.booxi("GET", path, params=too_long)).body

    search = {
        "merchantId": STORE_A,
        "range": {"startsOn": span["from"], "endsOn": span["to"]},
        "bookingItems": [{"serviceId": SERVICE_A}],
    }
    mirrored = await env.call("POST", "/availability/search", search, key=READ_KEY)
    direct = await env.booxi("POST", "/availability/search", search)
    assert (mirrored.status, mirrored.body) == (200, direct.body)
    assert await env.snapshot() == {table: [] for table in MIRRORED}


# ---- Booxi down -------------------------------------------------------------------


async def test_writes_answer_503_and_store_nothing_while_booxi_is_down(env: Env) -> None:
    start = _free_start(env.sim, STAFF_A)
    booking_id = (await env.call("POST", "/booking", _booking_body(env.sim, start))).json()[
        "booking"
    ]["bookingId"]
    new = {"merchantId": STORE_A, "firstName": "Ada", "lastName": "Down", "email": "a@x.org"}
    client_id = (await env.call("POST", "/client", new)).json()["client"]["id"]
    before = await env.snapshot((*MIRRORED, "idempotency_result"))

    await env.sim.control("POST", "/_sim/faults", {"outage": True})
    later = _free_start(env.sim, STAFF_A, days=60)
    writes = [
        ("POST", "/booking", _booking_body(env.sim, later)),
        ("PUT", f"/booking/{booking_id}", {"status": "Cancelled"}),
        ("POST", "/client", dict(new, email="b@x.org")),
        ("PUT", f"/client/{client_id}", {"lastName": "Changed"}),
        ("DELETE", f"/client/{client_id}", None),
        ("PUT", f"/client/{client_id}/moduleLink/crm", {"externalId": "X-1"}),
    ]
    for method, path, body in writes:
        answer = await env.call(method, path, body, headers={"Idempotency-Key": f"{method}{path}"})
        assert answer.status == 503, (method, path, answer.body)
        assert set(answer.json()) == {"message", "code"} and answer.json()["code"] == 503
        assert answer.headers["Retry-After"] == "30"
    assert await env.snapshot((*MIRRORED, "idempotency_result")) == before

    await env.sim.control("POST", "/_sim/faults", {"outage": False})
    method, path, body = writes[0]
    retried = await env.call(method, path, body, headers={"Idempotency-Key": f"{method}{path}"})
    assert retried.status == 200, retried.body
    await _stored_booking(env, retried.json()["booking"]["bookingId"])


# ---- idempotency ------------------------------------------------------------------


async def test_idempotency_key_books_once_and_replays_the_first_answer(env: Env) -> None:
    body = _booking_body(env.sim, _free_start(env.sim, STAFF_A))
    key = {"Idempotency-Key": "tablet-7:booking:0001"}
    count = len(env.sim.world.bookings)
    first = await env.call("POST", "/booking", body, headers=key)
    assert first.status == 200 and "Idempotent-Replayed" not in first.headers
    # the same request, its JSON keys in another order and spaced differently
    again = json.dumps(dict(reversed(body.items())), indent=2).encode()
    second = await env.call("POST", "/booking", again, headers=key)
    assert (second.status, second.body) == (200, first.body)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert len(env.sim.world.bookings) == count + 1
    posts = [r for r in await env.booxi_requests() if r["method"] == "POST"]
    assert len(posts) == 1

    other = await env.call(
        "POST", "/booking", dict(body, startsOn="2031-01-01T10:00:00Z"), headers=key
    )
    assert other.status == 422 and set(other.json()) == {"message", "code"}
    elsewhere = await env.call("PUT", "/booking/A1", {"status": "Cancelled"}, headers=key)
    assert elsewhere.status == 422
    assert len(env.sim.world.bookings) == count + 1

    # a rejection is an answer too: kept and replayed
    bad = dict(body, status="Cancelled")
    refused = await env.call("POST", "/booking", bad, headers={"Idempotency-Key": "k-400"})
    replayed = await env.call("POST", "/booking", bad, headers={"Idempotency-Key": "k-400"})
    assert (refused.status, replayed.status, replayed.body) == (400, 400, refused.body)
    assert replayed.headers["Idempotent-Replayed"] == "true"

    # keys belong to one API key: another key's caller is not answered from them
    mine = _booking_body(env.sim, _free_start(env.sim, STAFF_A, days=90))
    theirs = await env.call("POST", "/booking", mine, key=KEY_A, headers=key)
    assert theirs.status == 200 and theirs.body != first.body
    assert len(env.sim.world.bookings) == count + 2


async def test_idempotency_key_repeated_while_in_flight_is_409(env: Env) -> None:
    body = _booking_body(env.sim, _free_start(env.sim, STAFF_A))
    key = {"Idempotency-Key": "slow-one"}
    await env.sim.control("POST", "/_sim/faults", {"latency_ms": 600})
    first = asyncio.create_task(env.call("POST", "/booking", body, headers=key))
    await asyncio.sleep(0.2)
    during = await env.call("POST", "/booking", body, headers=key)
    assert during.status == 409 and set(during.json()) == {"message", "code"}
    done = await first
    assert done.status == 200
    after = await env.call("POST", "/booking", body, headers=key)
    assert (after.status, after.body, after.headers["Idempotent-Replayed"]) == (
        200,
        done.body,
        "true",
    )


async def test_idempotency_results_older_than_a_day_are_purged(env: Env) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)

    def kept_yesterday(conn: Connection) -> None:
        fields = {"method": "POST", "path": "/booking/v1/client", "body_sha256": "x"}
        for key in ("old", "other"):
            assert idempotency.record_pending(conn, principal="all", key=key, now=old, **fields)
            idempotency.store_result(
                conn, "all", key, status=200, content_type="application/json", body="{}"
            )

    await env.store.writer.run(kept_yesterday)
    new = {"merchantId": STORE_A, "firstName": "Old", "lastName": "Key", "email": "o@x.org"}
    answer = await env.call("POST", "/client", new, headers={"Idempotency-Key": "old"})
    assert answer.status == 200 and "Idempotent-Replayed" not in answer.headers
    rows = await env.store.rows("SELECT key, status, body_sha256 FROM idempotency_result")
    assert [(r["key"], r["status"]) for r in rows] == [("old", 200)]
    assert rows[0]["body_sha256"] != "x"


# ---- who may write ----------------------------------------------------------------


async def test_a_store_key_writes_nothing_of_another_store_and_booxi_never_hears(
    env: Env,
) -> None:
    booxi = booxi_client(env.sim)
    await refresh_reference_data(booxi, env.store.writer)  # services known locally
    await booxi.close()
    b_booking = (
        await env.call(
            "POST",
            "/booking",
            _booking_body(env.sim, _free_start(env.sim, STAFF_B), STORE_B, STAFF_B),
        )
    ).json()["booking"]["bookingId"]
    new_b = {"merchantId": STORE_B, "firstName": "Bea", "lastName": "Other", "email": "b@y.org"}
    b_client = (await env.call("POST", "/client", new_b)).json()["client"]["id"]
    unknown_client = max(env.sim.world.clients) - 1  # in Booxi, not in the mirror
    before = await env.snapshot()
    await env.sim.control("DELETE", "/_sim/requests")

    later = rfc3339(_free_start(env.sim, STAFF_B, days=70))
    span = {"from": later, "to": later}
    attempts = [
        (
            "POST",
            "/booking",
            _booking_body(env.sim, _free_start(env.sim, STAFF_B), STORE_B, STAFF_B),
            403,
        ),
        ("PUT", f"/booking/{b_booking}", {"status": "Cancelled"}, 404),
        ("PUT", "/booking/A77777777", {"status": "Cancelled"}, 404),
        ("POST", "/client", dict(new_b, email="c@y.org"), 403),
        ("PUT", f"/client/{b_client}", {"lastName": "Mine"}, 404),
        ("PUT", f"/client/{unknown_client}", {"lastName": "Mine"}, 404),
        ("DELETE", f"/client/{b_client}", None, 404),
        ("PUT", f"/client/{b_client}/moduleLink/crm", {"externalId": "STEAL"}, 404),
        ("GET", f"/service/{SERVICE_B}/availability", None, 404),
        ("POST", "/availability/search", {"merchantId": STORE_B, "range": {}}, 403),
    ]
    for method, path, body, status in attempts:
        params = span if method == "GET" else None
        answer = await env.call(method, path, body, key=KEY_A, params=params)
        assert answer.status == status, (method, path, answer.body)
        assert set(answer.json()) == {"message", "code"}
        replay = await env.call(
            method, path, body, key=KEY_A, params=params, headers={"Idempotency-Key": "try"}
        )
        assert replay.status == status, (method, path, replay.body)
    for method, path, body, _ in attempts:
        if method != "GET" and path != "/availability/search":  # those two only read
            answer = await env.call(method, path, body, key=READ_KEY)
            assert answer.status == 403, (method, path, answer.body)
    assert await env.booxi_requests() == []
    assert await env.snapshot() == before
    assert await env.store.rows("SELECT * FROM idempotency_result WHERE principal = 'a'") == []

    # its own store, it may
    mine = await env.call("GET", f"/service/{SERVICE_A}/availability", key=KEY_A, params=span)
    assert mine.status == 200, mine.body
    new_a = dict(new_b, merchantId=STORE_A)
    created = await env.call("POST", "/client", new_a, key=KEY_A)
    assert created.status == 200
    client_a = created.json()["client"]["id"]
    assert (
        await env.call("PUT", f"/client/{client_a}", {"lastName": "Ok"}, key=KEY_A)
    ).status == 200
    # a repeated delete is replayed although the client is gone from storage by then
    once = {"Idempotency-Key": "delete-once"}
    deleted = await env.call("DELETE", f"/client/{client_a}", key=KEY_A, headers=once)
    again = await env.call("DELETE", f"/client/{client_a}", key=KEY_A, headers=once)
    assert (deleted.status, again.status, again.headers["Idempotent-Replayed"]) == (
        204,
        204,
        "true",
    )


async def test_malformed_requests_are_refused_before_booxi(env: Env) -> None:
    await env.sim.control("DELETE", "/_sim/requests")
    cases = [
        ("POST", "/booking", b"", 400),
        ("POST", "/booking", b"{not json", 400),
        ("POST", "/booking", b"[1, 2]", 400),
        ("POST", "/booking", {"bookingMethod": "Appointment"}, 400),
        ("POST", "/client", {"merchantId": "34538"}, 400),
        ("PUT", "/client/abc", {"lastName": "x"}, 400),
        ("PUT", "/client/0", {"lastName": "x"}, 400),
        ("DELETE", "/client/1e3", None, 400),
        ("PUT", "/booking/" + "A" * 65, {"status": "Cancelled"}, 400),
        ("PUT", "/client/12/moduleLink/" + "m" * 101, {"externalId": "x"}, 400),
        ("GET", "/service/x1/availability", None, 400),
    ]
    for method, path, body, status in cases:
        answer = await env.call(method, path, body)
        assert answer.status == status, (method, path, answer.body)
        assert set(answer.json()) == {"message", "code"}
    long_key = {"Idempotency-Key": "k" * 201}
    answer = await env.call("POST", "/client", {"merchantId": STORE_A}, headers=long_key)
    assert answer.status == 400
    assert await env.booxi_requests() == []


# ---- a Booxi that answers 2xx with something else ------------------------------------


async def test_unexpected_success_answer_is_returned_as_is_and_not_stored(
    make_mirror_app, store: Store, aiohttp_server: AiohttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api.writes")

    async def odd(request: web.Request) -> web.Response:
        return web.Response(status=201, body=b'{"ok": true}', content_type="application/json")

    fake = web.Application()
    fake.router.add_route("*", "/booking/v1/{tail:.*}", odd)
    server = await aiohttp_server(fake)
    booxi = BooxiClient(str(server.make_url("/booking/v1")), "k" * 12, budget=RateBudget(100, 1000))
    app = await make_mirror_app(booxi=booxi)
    env = Env(None, app, store, aiohttp.ClientSession())  # type: ignore[arg-type]
    try:
        answer = await env.call("PUT", "/booking/A1", {"status": "Cancelled"})
        assert (answer.status, answer.body) == (201, b'{"ok": true}')
        assert answer.headers["Content-Type"].startswith("application/json")
        assert await env.snapshot() == {table: [] for table in MIRRORED}
        assert [r.route for r in caplog.records if r.getMessage() == "write.unexpected_answer"] == [  # type: ignore[attr-defined]
            "booking-update"
        ]
    finally:
        await env.session.close()
        await booxi.close()
