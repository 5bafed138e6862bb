"""Ready answers (``api.ready``): repeat reads come from memory, byte for byte what a
fresh read gives; every path that changes stored data drops exactly what it changed, at
once; ETag and 304; erased personal data leaves the memory with the rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer

from api.ready import READY, ReadyAnswers
from mirror.privacy import enforce_retention, erase_client
from mirror.sync import run_pass
from tests.conftest import (
    API_KEY,
    WEBHOOK_SECRET,
    MirrorApp,
    Sim,
    Store,
    booxi_client,
    calendar_params,
    owned_by_the_app,
)

pytestmark = pytest.mark.both_engines  # the tests that use the store: on both

AUTH = {"Authorization": f"Bearer {API_KEY}"}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
FMT = "%Y-%m-%dT%H:%M:%SZ"


def _ready(app: MirrorApp) -> ReadyAnswers:
    """The debug hook: the application's ready answers."""
    return app.server.app[READY]


async def _get(
    session: aiohttp.ClientSession, url: str, params: Any = None, **headers: str
) -> tuple[int, bytes, CIMultiDict[str]]:
    async with session.get(url, params=params, headers={**AUTH, **headers}) as response:
        return response.status, await response.read(), CIMultiDict(response.headers)


async def _synced(make_sim: Any, store: Store, make_mirror_app: Any, **api: Any) -> tuple:
    sim = await make_sim()
    client = booxi_client(sim)
    assert (await run_pass(client, store.writer, store.engine, horizon_days=30)).ok
    keys = [{"name": "all", "key": API_KEY, "scopes": ["read", "write"]}]
    app = await make_mirror_app(booxi=client, api={"keys": keys, **api})
    if READY in app.server.app:  # on PostgreSQL, kept once the change feed listens
        await _until(lambda: _ready(app).enabled, within_s=5)
    return sim, client, app


def _appointment(sim: Sim, *, besides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A live appointment in the polled window, with a client; with ``besides``, one of
    another staff member and another client."""
    return next(
        b
        for b in sorted(sim.world.bookings.values(), key=lambda b: b["bookingId"])
        if b["bookingMethod"] == "Appointment"
        and b["status"] != "Cancelled"
        and isinstance((b.get("client") or {}).get("id"), int)
        and NOW.strftime(FMT) < b["startsOn"] < (NOW + dt.timedelta(days=6)).strftime(FMT)
        and (
            besides is None
            or (b["staffId"] != besides["staffId"] and b["client"]["id"] != besides["client"]["id"])
        )
    )


def _reads(app: MirrorApp, booking: dict[str, Any]) -> list[tuple[str, Any]]:
    """The calendar week, the client's history and the booking, as URLs and params."""
    base = app.url + "/booking/v1"
    start = dt.datetime.strptime(booking["startsOn"], FMT).replace(tzinfo=dt.UTC)
    week = calendar_params(
        booking["staffId"], start - dt.timedelta(days=1), start + dt.timedelta(days=6)
    )
    return [
        (base + "/calendar", week),
        (base + "/booking", {"clientId": booking["client"]["id"]}),
        (base + f"/booking/{booking['bookingId']}", None),
    ]


async def _bodies(session: aiohttp.ClientSession, reads: list[tuple[str, Any]]) -> list[bytes]:
    found = []
    for url, params in reads:
        status, body, _ = await _get(session, url, params)
        assert status == 200, body
        found.append(body)
    return found


async def test_repeat_reads_are_kept_and_equal_byte_for_byte_what_a_fresh_read_gives(
    make_sim: Any, store: Store, make_mirror_app: Any
) -> None:
    sim, client, app = await _synced(make_sim, store, make_mirror_app)
    uncached = await make_mirror_app(
        booxi=client,
        api={"keys": [{"name": "all", "key": API_KEY, "scopes": ["read"]}], "ready_answers_mb": 0},
    )
    booking = _appointment(sim)
    ready = _ready(app)
    async with aiohttp.ClientSession() as session:
        first = await _bodies(session, _reads(app, booking))  # the history is filled here
        first = await _bodies(session, _reads(app, booking))
        hits = ready.hits
        again = await _bodies(session, _reads(app, booking))
        assert ready.hits == hits + 3 and len(ready) >= 3
        fresh = await _bodies(session, _reads(uncached, booking))
        assert READY not in uncached.server.app
        async with session.get(app.url + "/metrics") as response:
            metrics = await response.text()
        assert f"booxi_mirror_ready_hits_total {float(ready.hits)}" in metrics
        assert f"booxi_mirror_ready_answers {float(len(ready))}" in metrics
        assert f"booxi_mirror_ready_bytes {float(ready.size)}" in metrics
    assert again == first == fresh
    assert all(json.loads(body) for body in again)
    await client.close()


async def test_concurrent_first_reads_of_one_answer_build_it_once(
    make_sim: Any, store: Store, make_mirror_app: Any
) -> None:
    sim, client, app = await _synced(make_sim, store, make_mirror_app)
    booking = _appointment(sim)
    history = (app.url + "/booking/v1/booking", {"clientId": str(booking["client"]["id"])})
    ready = _ready(app)
    # a slow Booxi: the first read's fill takes a while, and the others arrive meanwhile
    await sim.control("POST", "/_sim/faults", {"latency_ms": 300})
    await sim.control("DELETE", "/_sim/requests")
    misses, hits = ready.misses, ready.hits
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(*[_get(session, *history) for _ in range(8)])
        async with session.get(app.url + "/metrics") as response:
            metrics = await response.text()
    assert {status for status, _, _ in answers} == {200}
    assert len({body for _, body, _ in answers}) == 1
    calls = [r["path"] for r in (await sim.control("GET", "/_sim/requests"))["requests"]]
    assert calls and all(path.endswith("/booking") for path in calls), calls
    # built twice: by the fill (its first answer is not kept: its own writes changed what
    # it read), then from storage by one of the others; the six others waited for it
    assert (ready.misses - misses, ready.hits - hits, ready.waits) == (2, 6, 13)
    assert f"booxi_mirror_ready_waits_total {float(ready.waits)}" in metrics
    assert not ready.building  # nothing left waiting
    # a read that fails (an unknown client: Booxi's 404) lets the others go on
    await sim.control("DELETE", "/_sim/requests")
    async with aiohttp.ClientSession() as session:
        missing = {"clientId": "987654321"}
        failed = await asyncio.gather(*[_get(session, history[0], missing) for _ in range(3)])
    assert {status for status, _, _ in failed} == {404}
    assert not ready.building
    await client.close()


async def test_etag_and_if_none_match(make_sim: Any, store: Store, make_mirror_app: Any) -> None:
    sim, client, app = await _synced(make_sim, store, make_mirror_app)
    booking = _appointment(sim)
    url, params = _reads(app, booking)[0]
    async with aiohttp.ClientSession() as session:
        status, body, headers = await _get(session, url, params)
        etag = headers["ETag"]
        assert status == 200 and etag.startswith('"') and etag.endswith('"') and len(etag) == 34
        for held in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            status, empty, again = await _get(session, url, params, **{"If-None-Match": held})
            assert status == 304 and empty == b""
            assert again["ETag"] == etag
            for name in ("Cache-Status", "Age", "X-Mirror-Synced-At"):
                assert again[name] == headers[name] or name == "Age"
        status, same, again = await _get(session, url, params, **{"If-None-Match": '"other"'})
        assert status == 200 and same == body and again["ETag"] == etag
        # a change: a new body, a new tag, and the old tag no longer matches
        await _webhook(session, app, booking, "a note from a webhook")
        status, changed, after = await _get(session, url, params, **{"If-None-Match": etag})
        assert status == 200 and b"a note from a webhook" in changed and after["ETag"] != etag
    await client.close()


async def _webhook(
    session: aiohttp.ClientSession, app: MirrorApp, booking: dict[str, Any], note: str
) -> None:
    changed = {**booking, "quickNote": note, "modifiedOn": _later(booking)}
    body = {
        "eventId": f"ready-{note}",
        "eventType": "appointment.updated",
        "content": {"booking": changed, "clientLinks": []},
    }
    headers = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}
    async with session.post(app.webhook_url, json=body, headers=headers) as response:
        assert response.status == 200, await response.text()


def _later(booking: dict[str, Any]) -> str:
    modified = dt.datetime.strptime(booking["modifiedOn"], FMT).replace(tzinfo=dt.UTC)
    return max(modified + dt.timedelta(seconds=1), NOW + dt.timedelta(seconds=1)).strftime(FMT)


def _change_at_booxi(sim: Sim, booking: dict[str, Any], note: str) -> None:
    """Booxi changes the booking (no webhook): a new note and ``modifiedOn``."""
    held = sim.world.bookings[booking["bookingId"]]
    held["quickNote"], held["modifiedOn"] = note, _later(held)


PATHS = ("webhook", "write", "poll", "fill", "other-connection")


async def _change_elsewhere(store: Store, booking_id: str, note: str) -> None:
    """The booking's note changed by another process's own connection."""
    if store.dialect == "sqlite":
        with sqlite3.connect(store.path) as other:
            other.execute(
                "UPDATE booking SET raw = json_set(raw, '$.quickNote', ?) WHERE booking_id = ?",
                (note, booking_id),
            )
        return
    from sqlalchemy import text

    from storage.engine import make_engine

    engine = make_engine(store.url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE booking SET raw = jsonb_set(raw::jsonb, '{quickNote}', "
                    "to_jsonb(CAST(:note AS text)))::text WHERE booking_id = :id"
                ),
                {"note": note, "id": booking_id},
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize("path", PATHS)
async def test_each_change_path_shows_in_the_next_read(
    make_sim: Any, store: Store, make_mirror_app: Any, path: str
) -> None:
    sim, client, app = await _synced(make_sim, store, make_mirror_app)
    booking = _appointment(sim)
    reads = _reads(app, booking)
    if path == "fill":  # the history is not read first: its fill is the change
        reads = [reads[0], reads[2]]
    note = f"changed by {path}"
    async with aiohttp.ClientSession() as session:
        await _bodies(session, reads)  # a first history read fills (and drops what it touched)
        await _bodies(session, reads)
        hits = _ready(app).hits
        before = await _bodies(session, reads)
        assert _ready(app).hits == hits + len(reads)  # held: a stale hit would now show
        assert all(note.encode() not in body for body in before)
        if path == "webhook":
            await _webhook(session, app, booking, note)
        elif path == "write":
            async with session.put(
                f"{app.url}/booking/v1/booking/{booking['bookingId']}",
                json={"quickNote": note},
                headers=AUTH,
            ) as response:
                assert response.status == 200, await response.text()
        elif path == "poll":
            _change_at_booxi(sim, booking, note)
            assert (await run_pass(client, store.writer, store.engine, horizon_days=30)).ok
        elif path == "fill":
            _change_at_booxi(sim, booking, note)
            status, history, _ = await _get(
                session, app.url + "/booking/v1/booking", {"clientId": booking["client"]["id"]}
            )
            assert status == 200 and note.encode() in history
        else:  # another connection (a CLI command beside serve, another replica)
            drops = _ready(app).drops
            await _change_elsewhere(store, booking["bookingId"], note)
            if store.dialect == "postgresql":  # notified: applied within a second
                await _until(lambda: _ready(app).drops >= drops + len(reads), within_s=1)
        after = await _bodies(session, reads)
    assert all(note.encode() in body for body in after), path
    await client.close()


async def test_a_write_through_one_replica_reaches_the_ready_answers_of_another(
    make_sim: Any, store: Store, make_mirror_app: Any, aiohttp_server: AiohttpServer
) -> None:
    """Two replicas on one database, each with its own engine, writer and reader (two
    ``serve`` processes): a webhook through one shows in its next read at once and in
    the other's within a second; an erasure through one leaves the other's memory
    within a second."""
    import asyncio

    from api.access_log import AccessLogger
    from api.app import create_app
    from mirror.config import Config
    from storage.engine import make_engine
    from storage.writer import Writer
    from tests.conftest import UNLIMITED_FILLS

    sim, client, one = await _synced(make_sim, store, make_mirror_app)
    engine = make_engine(store.url)
    writer = Writer(engine)

    keys = [{"name": "all", "key": API_KEY, "scopes": ["read", "write"]}]
    config = Config.model_validate(
        {"webhook": {"secret": WEBHOOK_SECRET}, "api": {"keys": keys, **UNLIMITED_FILLS}}
    )
    server = await aiohttp_server(
        create_app(config, engine=engine, writer=writer, parts=[owned_by_the_app(engine, writer)]),
        access_log_class=AccessLogger,
    )
    other = MirrorApp(server)
    booking = _appointment(sim)
    email = sim.world.clients[booking["client"]["id"]]["email"].encode()
    try:
        await _until(lambda: _ready(other).enabled, within_s=5)
        async with aiohttp.ClientSession() as session:
            for app in (one, other, one, other):  # the first history read fills
                await _bodies(session, _reads(app, booking))
            for _ in range(20):  # held (once what the fills set off has settled)
                hits = _ready(other).hits
                bodies = await _bodies(session, _reads(other, booking))
                if _ready(other).hits == hits + 3:
                    break
                await asyncio.sleep(0.05)
            assert _ready(other).hits == hits + 3 and any(email in b for b in bodies)
            loop = asyncio.get_running_loop()
            started, drops = loop.time(), _ready(other).drops
            await _webhook(session, one, booking, "through one replica")
            mine = await _bodies(session, _reads(one, booking))
            assert all(b"through one replica" in body for body in mine)
            await _until(lambda: _ready(other).drops >= drops + 3, within_s=1)
            took = loop.time() - started
            after = await _bodies(session, _reads(other, booking))
            assert all(b"through one replica" in body for body in after)
            print(f"{store.dialect}: the other replica dropped in {took * 1000:.0f} ms")  # noqa: T201
            for _ in range(20):  # kept again (unless a later commit came in between)
                if any(email in b for b in _ready(other).bodies()):
                    break
                await asyncio.sleep(0.05)
                await _bodies(session, _reads(other, booking))
            assert any(email in b for b in _ready(other).bodies())
            await erase_client(store.writer, booking["client"]["id"])
            assert not any(email in b for b in _ready(one).bodies())
            await _until(lambda: not any(email in b for b in _ready(other).bodies()), within_s=1)
    finally:
        await server.close()  # its writer and engine too, before the store's
    await client.close()


async def test_answers_about_other_data_stay_ready_after_a_change(
    make_sim: Any, store: Store, make_mirror_app: Any
) -> None:
    """Exact, not wholesale: a change to one booking leaves another staff member's
    calendar and another booking's answer in memory."""
    sim, client, app = await _synced(make_sim, store, make_mirror_app)
    booking = _appointment(sim)
    other = _appointment(sim, besides=booking)
    mine, theirs = _reads(app, booking), _reads(app, other)
    theirs = [theirs[0], theirs[2]]  # their calendar and their booking
    async with aiohttp.ClientSession() as session:
        await _bodies(session, mine + theirs)  # the first history read fills
        await _bodies(session, mine + theirs)
        await _webhook(session, app, booking, "only mine")
        hits = _ready(app).hits
        await _bodies(session, theirs)
        assert _ready(app).hits == hits + 2
        await _bodies(session, mine)
        assert _ready(app).hits == hits + 2  # every one of mine was dropped
    await client.close()


async def test_erased_and_expired_personal_data_leaves_the_memory(
    make_sim: Any, store: Store, make_mirror_app: Any
) -> None:
    sim, client, app = await _synced(make_sim, store, make_mirror_app)
    booking = _appointment(sim)
    person = sim.world.clients[booking["client"]["id"]]
    email = person["email"].encode()
    async with aiohttp.ClientSession() as session:
        await _bodies(session, _reads(app, booking))
        bodies = await _bodies(session, _reads(app, booking))
        assert any(email in body for body in bodies)
        assert any(email in body for body in _ready(app).bodies())
        await erase_client(store.writer, person["id"])
        assert not any(email in body for body in _ready(app).bodies())
        # retention (0 days): a client with no live booking ahead is anonymized; the
        # client's future bookings are cancelled first (by webhook)
        now = NOW.strftime(FMT)
        past = next(
            b
            for b in sorted(sim.world.bookings.values(), key=lambda b: b["bookingId"])
            if b["bookingMethod"] == "Appointment"
            and b["status"] != "Cancelled"
            and (NOW - dt.timedelta(days=5)).strftime(FMT) < b["totalClientTimespan"]["end"] < now
            and isinstance((b.get("client") or {}).get("id"), int)
            and b["client"]["id"] != person["id"]
        )
        for ahead in sim.world.bookings.values():
            if (ahead.get("client") or {}).get("id") == past["client"]["id"] and (
                ahead["totalClientTimespan"]["end"] >= now
            ):
                cancelled = {**ahead, "status": "Cancelled"}
                await _webhook(session, app, cancelled, f"cancel {ahead['bookingId']}")
        gone = sim.world.clients[past["client"]["id"]]["email"].encode()
        for _ in range(2):  # the first may be a fill
            status, body, _ = await _get(
                session, app.url + f"/booking/v1/booking/{past['bookingId']}"
            )
        assert status == 200 and gone in body
        assert any(gone in b for b in _ready(app).bodies())
        outcome = await enforce_retention(store.writer, 0)
        assert past["client"]["id"] in outcome.anonymized
        assert not any(gone in b for b in _ready(app).bodies())
    await client.close()


def test_the_change_log_read_in_order_a_gap_or_a_late_read_keeps_nothing() -> None:
    """What the store does with the log itself: rows applied once and in order; rows
    pruned before they were read (a gap) drop everything; an answer read before a change
    that names it is not kept, one about something else is."""
    from api.freshness import Freshness
    from api.ready import Ready, Tag
    from storage.changes import Change

    ready = ReadyAnswers(1_000_000)
    fresh = Freshness(None)

    def answer(name: str, lo: str | None = None, hi: str | None = None) -> Ready:
        return Ready(b"{}", '"x"', fresh, (Tag(name, lo, hi),))

    assert ready.put("week", answer("staff:1", "2026-01-05", "2026-01-12"), ready.generation)
    assert ready.put("other", answer("staff:2"), ready.generation)
    ready.apply([Change(1, "staff:1", "2026-02-01", "2026-02-02")])  # another range
    assert ready.get("week") is not None and ready.applied_seq == 1
    since = ready.generation  # a read starts here...
    ready.apply(
        [Change(1, "staff:1", None, None), Change(2, "staff:1", "2026-01-06", "2026-01-06")]
    )
    assert ready.get("week") is None and ready.get("other") is not None  # seq 1 not again
    assert not ready.put("week", answer("staff:1", "2026-01-05", "2026-01-12"), since)
    assert ready.put("third", answer("staff:3"), since)  # ...and ends after the change
    ready.apply([Change(5, "client:9", None, None)])  # 3 and 4 were pruned unread
    assert len(ready) == 0 and ready.applied_seq == 5


# ---- following other connections, on both engines (the store and its followers) ----------
WEEK = ("2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z")


def _booking_row(booking_id: str, staff_id: int, client_id: int) -> dict[str, Any]:
    from storage.models import TABLES

    row = {c.name: None for c in TABLES.tables["booking"].columns}
    return {
        **row,
        "booking_id": booking_id,
        "merchant_id": 1,
        "staff_id": staff_id,
        "client_id": client_id,
        "method": "Appointment",
        "status": "Approved",
        "starts_on": "2026-01-06T09:00:00Z",
        "ends_on": "2026-01-06T10:00:00Z",
        "modified_on": "2026-01-01T00:00:00Z",
        "raw": "{}",
        "source": "poll",
        "synced_at": NOW,
    }


async def _following(store: Store) -> tuple[Any, ReadyAnswers]:
    """An application holding only the ready answers and what follows the changes
    (``api.invalidation``), started: listening, on PostgreSQL."""

    from api.invalidation import follow, writes
    from api.keys import ENGINE, READER, WRITER
    from storage.reader import Reader

    app = web.Application()
    app[ENGINE], app[WRITER] = store.engine, store.writer
    if store.dialect == "sqlite":
        app[READER] = Reader(store.engine)
    ready = app[READY] = ReadyAnswers(1_000_000)
    app.cleanup_ctx.extend([writes, follow])
    app.freeze()
    await app.startup()
    await _until(lambda: ready.enabled, within_s=5)
    return app, ready


async def _until(condition: Any, within_s: float) -> float:
    """Seconds until ``condition()`` held (fails after ``within_s``)."""
    import asyncio

    loop = asyncio.get_running_loop()
    started = loop.time()
    while not condition():
        assert loop.time() - started < within_s, f"not within {within_s} s"
        await asyncio.sleep(0.01)
    return loop.time() - started


def _keep_two(ready: ReadyAnswers) -> None:
    """A calendar week of staff 7 and a history of client 99 (another booking's)."""
    from api.freshness import Freshness
    from api.ready import Ready, Tag

    fresh = Freshness(None)
    week = Ready(b"week", '"w"', fresh, (Tag("staff:7", *WEEK), Tag("ref")))
    history = Ready(b"history", '"h"', fresh, (Tag("client:99"), Tag("ref")))
    assert ready.put("week", week, ready.generation)
    assert ready.put("history", history, ready.generation)


@pytest.mark.both_engines
async def test_a_change_through_another_connection_drops_what_it_names_within_a_second(
    store: Store,
) -> None:
    """Another process (a replica, a CLI command) changes a booking of staff 7: the
    week's answer goes within a second, another client's history stays."""
    from sqlalchemy import insert, text

    from storage.engine import make_engine
    from storage.models import TABLES

    await store.writer.run(
        lambda conn: conn.execute(
            insert(TABLES.tables["booking"]),
            [_booking_row("b-7", 7, 5), _booking_row("b-8", 8, 99)],
        )
    )
    app, ready = await _following(store)
    other = make_engine(store.url)
    try:
        _keep_two(ready)
        async with other.begin() as conn:
            await conn.execute(
                text("UPDATE booking SET status = 'Cancelled' WHERE booking_id = 'b-7'")
            )
        took = await _until(lambda: ready.get("week") is None, within_s=1)
        assert ready.get("history") is not None
        print(f"{store.dialect}: dropped {took * 1000:.0f} ms after the other commit")  # noqa: T201
        # this process's own write: dropped before the write's caller resumes
        _keep_two(ready)
        await store.writer.run(
            lambda conn: conn.execute(
                text("UPDATE booking SET raw = '{\"v\": 2}' WHERE booking_id = 'b-8'")
            )
        )
        assert ready.get("history") is None  # b-8 is client 99's...
        assert ready.get("week") is not None  # ...and staff 8's
    finally:
        await other.dispose()
        await app.cleanup()


@pytest.mark.both_engines
async def test_a_read_in_flight_across_another_connections_change_is_not_kept(
    store: Store,
) -> None:
    from sqlalchemy import insert, text

    from api.freshness import Freshness
    from api.ready import Ready, Tag
    from storage.engine import make_engine
    from storage.models import TABLES

    await store.writer.run(
        lambda conn: conn.execute(insert(TABLES.tables["booking"]), [_booking_row("b-7", 7, 5)])
    )
    app, ready = await _following(store)
    other = make_engine(store.url)
    try:
        since = ready.generation  # a read starts, reads the old row...
        async with other.begin() as conn:
            await conn.execute(
                text("UPDATE booking SET status = 'Cancelled' WHERE booking_id = 'b-7'")
            )
        await _until(lambda: ready.generation != since, within_s=1)
        week = Ready(b"old week", '"w"', Freshness(None), (Tag("staff:7", *WEEK),))
        assert not ready.put("week", week, since)  # ...and finishes after the change
        unrelated = Ready(b"other", '"o"', Freshness(None), (Tag("staff:3", *WEEK),))
        assert ready.put("other", unrelated, since)
    finally:
        await other.dispose()
        await app.cleanup()


async def test_a_lost_change_feed_drops_everything_keeps_nothing_and_listens_again(
    postgres_url: str,
) -> None:
    """PostgreSQL: the notifications' connection is killed (``pg_terminate_backend``)
    while the database refuses new connections: every answer goes at once, none is kept
    while the feed cannot listen; once it can, it listens again, and changes drop
    answers as before."""
    import asyncio

    from sqlalchemy import insert, text
    from sqlalchemy.engine import make_url

    from api.freshness import Freshness
    from api.ready import Ready, Tag
    from storage import changes
    from storage.engine import make_engine
    from storage.migrate import upgrade
    from storage.models import TABLES
    from storage.writer import Writer

    engine = make_engine(postgres_url)
    await upgrade(engine)
    writer = Writer(engine)
    await writer.start()
    store = Store(engine, writer, None, postgres_url)
    await writer.run(
        lambda conn: conn.execute(insert(TABLES.tables["booking"]), [_booking_row("b-7", 7, 5)])
    )
    app, ready = await _following(store)
    database = make_url(postgres_url).database
    week = Ready(b"week", '"w"', Freshness(None), (Tag("staff:7", *WEEK),))
    try:
        _keep_two(ready)
        since = ready.generation  # a read in flight
        await _on_server(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        async with engine.connect() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": changes.APPLICATION_NAME},
            )
            await conn.commit()
        assert killed == 1
        took = await _until(lambda: len(ready) == 0, within_s=1)
        print(f"lost feed noticed in {took * 1000:.0f} ms")  # noqa: T201
        await asyncio.sleep(0.5)
        assert not ready.enabled  # lookups answer from storage and keep nothing
        assert not ready.put("week", week, since)  # nor does the read in flight
        assert not ready.put("week", week, ready.generation)  # nor any other
        await _on_server(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        back = await _until(lambda: ready.enabled, within_s=6)
        print(f"listening again {back * 1000:.0f} ms after connections are allowed")  # noqa: T201
        _keep_two(ready)
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE booking SET status = 'Cancelled' WHERE booking_id = 'b-7'")
            )
        await _until(lambda: ready.get("week") is None, within_s=1)
        assert ready.get("history") is not None
    finally:
        await app.cleanup()
        await writer.close()
        await engine.dispose()


async def _on_server(statement: str) -> None:
    """A statement on the test server's own database (not the test's)."""
    import os

    from sqlalchemy import text

    from storage.engine import make_engine
    from tests.conftest import POSTGRES_URL_VARIABLE

    admin = make_engine(os.environ[POSTGRES_URL_VARIABLE], isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


@pytest.mark.both_engines
async def test_under_concurrent_writes_no_kept_answer_outlives_its_data(store: Store) -> None:
    """Reads keep answers while this process's writer and another connection change the
    same rows: once the writes stop and a second has passed, every answer still kept
    equals what the database holds."""
    import asyncio
    import random

    from sqlalchemy import insert, text

    from api.freshness import Freshness
    from api.ready import Ready, Tag
    from storage.engine import make_engine
    from storage.models import TABLES

    ids = [f"b-{i}" for i in range(60)]
    rows = [_booking_row(i, n % 3, n) for n, i in enumerate(ids)]
    await store.writer.run(lambda conn: conn.execute(insert(TABLES.tables["booking"]), rows))
    app, ready = await _following(store)
    other = make_engine(store.url)
    update = text("UPDATE booking SET raw = :raw WHERE booking_id = :id")
    done = reads_done = asyncio.Event()
    rng = random.Random(11)

    async def elsewhere() -> None:
        for n in range(10**9):
            if done.is_set():
                return
            async with other.begin() as conn:
                await conn.execute(update, {"raw": f'{{"other": {n}}}', "id": rng.choice(ids)})

    async def here() -> None:
        for n in range(10**9):
            if done.is_set():
                return
            raw, id_ = f'{{"here": {n}}}', rng.choice(ids)
            await store.writer.run(
                lambda conn, r=raw, i=id_: conn.execute(update, {"raw": r, "id": i})
            )

    async def reads() -> int:
        kept = 0
        while not reads_done.is_set():
            id_ = rng.choice(ids)
            since = ready.generation
            async with store.engine.connect() as conn:
                raw = await conn.scalar(
                    text("SELECT raw FROM booking WHERE booking_id = :id"), {"id": id_}
                )
            await asyncio.sleep(rng.random() * 0.01)  # building the answer takes a while
            answer = Ready(raw.encode(), '"x"', Freshness(None), (Tag(f"booking:{id_}"),))
            kept += ready.put(id_, answer, since)
        return kept

    try:
        tasks = [asyncio.create_task(f()) for f in (elsewhere, here, *[reads] * 4)]
        await asyncio.sleep(2)
        done.set()
        reads_done.set()
        kept = sum([n for n in await asyncio.gather(*tasks) if n is not None])
        await asyncio.sleep(1)
        async with store.engine.connect() as conn:
            result = await conn.execute(text("SELECT booking_id, raw FROM booking"))
            held = dict(result.all())
        stale = [i for i in ids if (r := ready.get(i)) is not None and r.body != held[i].encode()]
        print(f"{store.dialect}: {kept} kept, {ready.drops} dropped, {len(ready)} held")  # noqa: T201
        assert kept > 20 and ready.drops > 20 and len(ready) > 0 and not stale
    finally:
        await other.dispose()
        await app.cleanup()
