"""Crafted requests, as an attacker sends them: each gets a 4xx in the expected shape
(Booxi's on ``/booking/v1``, the mirror's own on ``/webhooks/booxi``), never a 500,
and nothing stored changes.

One test per finding: signed cursors, path ids, instants out of range, repeated
single-value parameters, key headers that are not ASCII, webhook bodies (depth, ids,
instants), each sent as such over a real socket.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook
from yarl import URL

from storage import reference
from storage.rows import merchant_row, staff_row
from storage.times import instant_key, parse_instant
from tests.conftest import (
    API_KEY,
    WEBHOOK_SECRET,
    MirrorApp,
    Store,
    booxi_client,
    calendar_params,
    sample,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
HOOK_AUTH = {"Authorization": f"Bearer {WEBHOOK_SECRET}", "Content-Type": "application/json"}
KEYS = [{"name": "all", "key": API_KEY, "scopes": ["read", "write"]}]
SIGNING = "whsec_" + base64.b64encode(b"mirror signing secret, 32 bytes.").decode()
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TABLES = (
    "booking",
    "calendar_event",
    "client",
    "module_link",
    "inbox_event",
    "merchant",
    "staff",
    "coverage",
    "mirror_secret",
)


# ---- helpers ----------------------------------------------------------------------------
def _booxi_shaped(status: int, body: Any) -> None:
    assert isinstance(body, dict) and set(body) <= {"message", "code", "error"}, body
    assert body["code"] == status and isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in body["message"]


def _mirror_shaped(status: int, body: Any) -> None:
    assert body["error"]["status"] == status, body
    assert "Traceback" not in body["error"]["message"]


async def _snapshot(store: Store) -> list[Any]:
    return [await store.rows(f"SELECT * FROM {t} ORDER BY 1") for t in TABLES]


async def _get(
    app: MirrorApp, path: str, params: Any = None, *, encoded: bool = False
) -> tuple[int, Any]:
    url: Any = URL(app.url + path, encoded=True) if encoded else app.url + path
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, params=params, headers=AUTH) as response,
    ):
        return response.status, await response.json()


async def _refused(app: MirrorApp, path: str, params: Any = None, **kwargs: Any) -> str:
    """GET answered 400 in Booxi's shape; its message."""
    status, body = await _get(app, path, params, **kwargs)
    assert status == 400, (path, params, body)
    _booxi_shaped(400, body)
    return str(body["message"])


async def _raw(app: MirrorApp, request: bytes) -> tuple[int, Any]:
    """Send bytes as they are (headers outside ASCII included) over a real socket."""
    url = URL(app.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return status, json.loads(await reader.readexactly(length))
    finally:
        writer.close()


async def _seed_reference(store: Store, staff: int = 3) -> None:
    """A store and its staff, as a poll would have left them (no Booxi needed)."""

    def job(conn: Any) -> None:
        reference.upsert_merchants(conn, [merchant_row({"id": 1, "name": "Shop"}, "poll", NOW)])
        reference.upsert_staff(
            conn,
            [
                staff_row({"id": 100 + n, "merchantId": 1, "status": "Online"}, "poll", NOW)
                for n in range(staff)
            ],
        )

    await store.writer.run(job)


async def _cursor_key(store: Store) -> bytes:
    rows = await store.rows("SELECT value FROM mirror_secret WHERE name = 'cursor'")
    return bytes.fromhex(rows[0]["value"])


def _sign(key: bytes, kind: str, payload: Any) -> str:
    """A cursor as the mirror signs one (``api.query``): what a leaked key could make."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    tag = hmac.new(key, kind.encode() + b"\n" + raw, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(raw + tag).decode().rstrip("=")


def _unsigned(payload: Any) -> str:
    """A cursor in the mirror's former, unsigned form."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _event(event_id: str = "evt-c", **booking: Any) -> dict[str, Any]:
    event = copy.deepcopy(sample("webhook-appointment-created.json"))
    event["eventId"] = event_id
    event["content"]["booking"].update(booking)
    return event


async def _hook(
    app: MirrorApp, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(app.webhook_url, data=data, headers=headers or HOOK_AUTH) as response,
    ):
        return response.status, await response.json()


# ---- 1. signed cursors -------------------------------------------------------------------
async def test_tampered_truncated_foreign_and_other_kind_cursors_are_400(
    make_mirror_app, store: Store
) -> None:
    await _seed_reference(store)
    app = await make_mirror_app(api={"keys": KEYS, "page_size": 1})
    status, page = await _get(app, "/booking/v1/staff/list")
    assert status == 200 and page["cursor"], page
    good = page["cursor"]
    assert isinstance(good, str) and good.isascii() and good.replace("-", "").replace("_", "")
    before = await _snapshot(store)

    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[10:]
    for cursor in (
        flipped,  # one character changed
        good[:-3],  # truncated
        good[:-1] + ("A" if good[-1] != "A" else "B"),  # the tag changed
        good + "AAAA",  # lengthened
        good + "%",
        "x" * 5_000,
        _sign(b"another database's key, 32 bytes", "staff", {"q": {}, "after": [101]}),
        _unsigned({"kind": "staff", "q": {}, "after": [101]}),  # the old unsigned form
    ):
        message = await _refused(app, "/booking/v1/staff/list", {"cursor": cursor})
        assert message == "cursor is not valid for this endpoint"
    # a cursor of another kind (the signature binds the endpoint)
    for path in ("/booking/v1/service/list", "/booking/v1/serviceCategory/list"):
        await _refused(app, path, {"cursor": good})
    await _refused(app, "/booking/v1/calendar", {"cursor": good})
    await _refused(app, "/booking/v1/booking", {"cursor": good})
    assert await _snapshot(store) == before
    # the genuine one still works, and across a restart (the same database)
    again = await make_mirror_app(api={"keys": KEYS, "page_size": 1})
    status, second = await _get(again, "/booking/v1/staff/list", {"cursor": good})
    assert status == 200 and [s["id"] for s in second["staffs"]] == [101]


_KEY = "2026-01-02T00:00:00.000000Z"
_CALENDAR: dict[str, Any] = {
    "q": {
        "staffId": 101,
        "from": "2026-01-01T00:00:00.000000Z",
        "to": "2026-01-08T00:00:00.000000Z",
        "eventType": ["Appointment"],
        "include": ["None"],
    },
    "after": [_KEY, 5],
}
_HISTORY: dict[str, Any] = {
    "q": {
        "clientId": 5,
        "merchantId": None,
        "from": None,
        "to": None,
        "bookingMethod": [],
        "descending": False,
    },
    "after": [_KEY, "A1"],
}


@pytest.mark.parametrize(
    ("kind", "path", "payload"),
    [
        # a position that is a list, an object, an integer 2^63, a bool
        ("staff", "/booking/v1/staff/list", {"q": {}, "after": [[101]]}),
        ("staff", "/booking/v1/staff/list", {"q": {}, "after": [{"id": 101}]}),
        ("staff", "/booking/v1/staff/list", {"q": {}, "after": [2**63]}),
        ("staff", "/booking/v1/staff/list", {"q": {}, "after": [True]}),
        ("staff", "/booking/v1/staff/list", {"q": {"merchantId": [1]}, "after": [101]}),
        ("staff", "/booking/v1/staff/list", {"q": {"merchantId": 2**64}, "after": [101]}),
        ("staff", "/booking/v1/staff/list", {"q": [], "after": [101]}),
        ("service", "/booking/v1/service/list", {"q": {}, "after": []}),
        ("calendar", "/booking/v1/calendar", {**_CALENDAR, "after": [_KEY, 2**63]}),
        ("calendar", "/booking/v1/calendar", {**_CALENDAR, "after": ["2026-01-02", True]}),
        ("calendar", "/booking/v1/calendar", {**_CALENDAR, "after": [["x"], 1]}),
        (
            "calendar",
            "/booking/v1/calendar",
            {**_CALENDAR, "q": {**_CALENDAR["q"], "staffId": True}},
        ),
        (
            "calendar",
            "/booking/v1/calendar",
            {**_CALENDAR, "q": {**_CALENDAR["q"], "from": "0001-01-01T00:00:00+01:00"}},
        ),
        (
            "calendar",
            "/booking/v1/calendar",
            {**_CALENDAR, "q": {**_CALENDAR["q"], "eventType": "Appointment"}},
        ),
        ("booking", "/booking/v1/booking", {**_HISTORY, "after": [_KEY, {"id": "A1"}]}),
        ("booking", "/booking/v1/booking", {**_HISTORY, "after": [2**63, "A1"]}),
        (
            "booking",
            "/booking/v1/booking",
            {**_HISTORY, "q": {**_HISTORY["q"], "merchantId": 2**63}},
        ),
        (
            "booking",
            "/booking/v1/booking",
            {**_HISTORY, "q": {**_HISTORY["q"], "descending": "yes"}},
        ),
    ],
)
async def test_signed_cursors_with_wrong_types_are_400_not_a_database_error(
    make_mirror_app, store: Store, kind: str, path: str, payload: Any
) -> None:
    await _seed_reference(store)
    app = await make_mirror_app()
    before = await _snapshot(store)
    cursor = _sign(await _cursor_key(store), kind, payload)
    message = await _refused(app, path, {"cursor": cursor})
    assert message == "cursor is not valid for this endpoint"
    assert await _snapshot(store) == before


async def test_signed_cursors_with_the_right_types_are_read(make_mirror_app, store: Store) -> None:
    """The control for the test above: the same cursors, well typed, are answered."""
    await _seed_reference(store)
    app = await make_mirror_app()
    key = await _cursor_key(store)
    for kind, path, payload in (
        ("calendar", "/booking/v1/calendar", _CALENDAR),
        ("booking", "/booking/v1/booking", _HISTORY),
        ("staff", "/booking/v1/staff/list", {"q": {"merchantId": 1}, "after": [101]}),
    ):
        status, body = await _get(app, path, {"cursor": _sign(key, kind, payload)})
        assert status == 200, (kind, body)
    status, body = await _get(
        app, "/booking/v1/staff/list", {"cursor": _sign(key, "staff", {"q": {}, "after": [101]})}
    )
    assert [s["id"] for s in body["staffs"]] == [102]


async def test_calendar_cursors_follow_across_a_restart(make_sim, make_mirror_app) -> None:
    sim = await make_sim()
    staff_id = next(iter(sim.world.staff))
    start = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    params = calendar_params(staff_id, start, start + dt.timedelta(days=6))
    async with booxi_client(sim) as client:
        app = await make_mirror_app(booxi=client, api={"keys": KEYS, "page_size": 1})
        status, first = await _get(app, "/booking/v1/calendar", params)
        assert status == 200, first
        if not first["cursor"]:
            pytest.skip("the simulated calendar has a single event")
        again = await make_mirror_app(booxi=client, api={"keys": KEYS, "page_size": 1})
        status, second = await _get(again, "/booking/v1/calendar", {"cursor": first["cursor"]})
        assert status == 200, second
        assert second["calendarEvents"] and second["calendarEvents"] != first["calendarEvents"]
        # the calendar's cursor is refused by the other cursor routes
        await _refused(again, "/booking/v1/booking", {"cursor": first["cursor"]})
        await _refused(again, "/booking/v1/staff/list", {"cursor": first["cursor"]})


# ---- 2. path ids ---------------------------------------------------------------------------
ID_ROUTES = [
    ("GET", "/booking/v1/client/{}"),
    ("GET", "/booking/v1/client/{}/moduleLink/crm"),
    ("GET", "/booking/v1/merchant/{}"),
    ("GET", "/booking/v1/staff/{}"),
    ("GET", "/booking/v1/service/{}"),
    ("GET", "/booking/v1/serviceCategory/{}"),
    ("GET", "/booking/v1/service/{}/availability"),
    ("PUT", "/booking/v1/client/{}"),
    ("DELETE", "/booking/v1/client/{}"),
    ("PUT", "/booking/v1/client/{}/moduleLink/crm"),
]
BAD_IDS = [
    "%C2%B2",  # superscript two: str.isdigit() says yes, int() says no
    "%D9%A2",  # Arabic-Indic two
    "%EF%BC%91",  # fullwidth one
    "9007199254740992",  # 2^53
    "9223372036854775808",  # 2^63
    "1" * 40,
    "0",
    "-1",
    "+1",
    "1%20",
    "0x1",
    "%ED%A0%80",  # an encoded surrogate
]


@pytest.mark.parametrize(("method", "template"), ID_ROUTES)
async def test_path_ids_are_ascii_digits_within_range(
    mirror_app: MirrorApp, store: Store, method: str, template: str
) -> None:
    before = await _snapshot(store)
    async with aiohttp.ClientSession() as session:
        for raw in BAD_IDS:
            url = URL(mirror_app.url + template.format(raw), encoded=True)
            async with session.request(method, url, headers=AUTH, json={}) as response:
                body = await response.json()
                assert response.status == 400, (method, template, raw, body)
                _booxi_shaped(400, body)
    assert await _snapshot(store) == before


async def test_get_client_superscript_two_is_400(mirror_app: MirrorApp, store: Store) -> None:
    before = await _snapshot(store)
    status, body = await _raw(
        mirror_app,
        b"GET /booking/v1/client/%C2%B2 HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {API_KEY}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert status == 400
    _booxi_shaped(400, body)
    assert await _snapshot(store) == before


async def test_query_ids_are_ascii_digits_within_range(mirror_app: MirrorApp, store: Store) -> None:
    before = await _snapshot(store)
    for value in ("²", "٢", "9223372036854775808", "9007199254740992", "1.0", "1e3", " 1"):
        await _refused(mirror_app, "/booking/v1/staff/list", {"merchantId": value})
        await _refused(mirror_app, "/booking/v1/booking", {"clientId": value})
        await _refused(mirror_app, "/booking/v1/merchant/list", {"groupId": value})
        await _refused(
            mirror_app,
            "/booking/v1/calendar",
            [
                ("staffId", value),
                ("from", "2026-01-01T00:00:00Z"),
                ("to", "2026-01-02T00:00:00Z"),
                ("eventType", "Appointment"),
                ("include", "None"),
            ],
        )
    assert await _snapshot(store) == before


# ---- 3. instants ------------------------------------------------------------------------
OUT_OF_RANGE = [
    "0999-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC: no datetime holds it
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",  # after year 9999 once in UTC
    "9999-12-31T23:59:59Z",
    "1969-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
    "2199-12-31T23:30:00-01:00",  # 2200 in UTC
    "1970-01-01T00:30:00+01:00",  # 1969 in UTC
    "٢٠٢٦-01-01T00:00:00Z",  # digits, but not ASCII ones
    "2026-01-01T00:00:00Z\n",
    "2026-01-01T00:00:00+24:00",
]


def test_instants_are_1970_to_2199_and_keys_fixed_width() -> None:
    for value in OUT_OF_RANGE:
        with pytest.raises(ValueError):
            parse_instant(value)
    assert parse_instant("1970-01-01T00:00:00Z") == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert parse_instant("2200-01-01T00:30:00+01:00").year == 2199
    assert instant_key("2199-12-31T23:59:59Z") == "2199-12-31T23:59:59.000000Z"
    early = dt.datetime(999, 1, 1, tzinfo=dt.UTC)
    assert instant_key(early) == "0999-01-01T00:00:00.000000Z"
    assert instant_key(early) < instant_key(dt.datetime(1000, 1, 1, tzinfo=dt.UTC))


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_out_of_range_instants_in_queries_are_400(
    mirror_app: MirrorApp, store: Store, value: str
) -> None:
    before = await _snapshot(store)
    for name in ("from", "to"):
        bounds = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", name: value}
        message = await _refused(
            mirror_app,
            "/booking/v1/calendar",
            [
                ("staffId", "1"),
                ("from", bounds["from"]),
                ("to", bounds["to"]),
                ("eventType", "Appointment"),
                ("include", "None"),
            ],
        )
        assert name in message
        await _refused(mirror_app, "/booking/v1/booking", {"clientId": "1", name: value})
    assert await _snapshot(store) == before


async def test_calendar_from_year_0999_is_400(mirror_app: MirrorApp, store: Store) -> None:
    before = await _snapshot(store)
    status, body = await _raw(
        mirror_app,
        b"GET /booking/v1/calendar?staffId=1&from=0999-01-01T00:00:00Z"
        b"&to=2026-01-01T00:00:00Z&eventType=Appointment&include=None HTTP/1.1\r\n"
        + f"Host: x\r\nAuthorization: Bearer {API_KEY}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert status == 400
    _booxi_shaped(400, body)
    assert await _snapshot(store) == before


# ---- 4. repeated single-value parameters ---------------------------------------------------
async def test_repeated_single_value_parameters_are_400(make_mirror_app, store: Store) -> None:
    await _seed_reference(store)
    app = await make_mirror_app(api={"keys": KEYS, "page_size": 1})
    status, page = await _get(app, "/booking/v1/staff/list")
    assert status == 200 and page["cursor"]
    before = await _snapshot(store)
    calendar = [
        ("staffId", "101"),
        ("from", "2026-01-01T00:00:00Z"),
        ("to", "2026-01-02T00:00:00Z"),
        ("eventType", "Appointment"),
        ("include", "None"),
    ]
    for path, params in (
        ("/booking/v1/staff/list", [("cursor", page["cursor"]), ("cursor", page["cursor"])]),
        ("/booking/v1/calendar", [("cursor", "abc"), ("cursor", "abc")]),
        ("/booking/v1/calendar", [*calendar, ("staffId", "102")]),
        ("/booking/v1/calendar", [*calendar, ("from", "2026-01-01T00:00:00Z")]),
        ("/booking/v1/calendar", [*calendar, ("language", "en"), ("language", "fr")]),
        ("/booking/v1/booking", [("clientId", "1"), ("clientId", "2")]),
        (
            "/booking/v1/booking",
            [("clientId", "1"), ("order", "Ascending"), ("order", "Ascending")],
        ),
        ("/booking/v1/staff/list", [("merchantId", "1"), ("merchantId", "1")]),
        ("/booking/v1/staff/list", [("status", "Online"), ("status", "Offline")]),
        ("/booking/v1/merchant/list", [("limit", "1"), ("limit", "2")]),
        ("/booking/v1/client", [("merchantId", "1"), ("email", "a@b.c"), ("email", "d@e.f")]),
        ("/booking/v1/staff", [("merchantId", "1"), ("merchantId", "2")]),
        ("/booking/v1/booking/A1", [("language", "en"), ("language", "en")]),
    ):
        message = await _refused(app, path, params)
        assert "only once" in message, (path, message)
    assert await _snapshot(store) == before


# ---- 5. key headers outside ASCII ---------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        b"Authorization: Bearer caf\xe9",
        b"Authorization: Bearer caf\xc3\xa9",
        b"Authorization: \xff\xfe",
        b"Booxi-PartnerKey: k\xe9y",
        b"Booxi-APIKey: k\xe9y",
    ],
)
async def test_key_headers_outside_ascii_are_401(
    mirror_app: MirrorApp, store: Store, header: bytes
) -> None:
    before = await _snapshot(store)
    status, body = await _raw(
        mirror_app,
        b"GET /booking/v1/merchant/list HTTP/1.1\r\nHost: x\r\n"
        + header
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert status == 401
    _booxi_shaped(401, body)
    # a valid key beside a non-ASCII key header is refused too
    status, body = await _raw(
        mirror_app,
        b"GET /booking/v1/merchant/list HTTP/1.1\r\nHost: x\r\n"
        + b"Booxi-APIKey: k\xe9y\r\n"
        + f"Authorization: Bearer {API_KEY}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert status == 401
    _booxi_shaped(401, body)
    # the webhook receiver: 401 in its own shape, nothing stored
    payload = json.dumps(_event()).encode()
    status, body = await _raw(
        mirror_app,
        b"POST /webhooks/booxi HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + header.replace(b"Booxi-PartnerKey", b"Authorization").replace(
            b"Booxi-APIKey", b"Authorization"
        )
        + f"\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
        + payload,
    )
    assert status == 401
    _mirror_shaped(401, body)
    assert await _snapshot(store) == before


async def test_webhook_secret_header_outside_ascii_is_401(make_mirror_app, store: Store) -> None:
    app = await make_mirror_app(webhook={"secret": WEBHOOK_SECRET, "secret_header": "X-Secret"})
    before = await _snapshot(store)
    payload = json.dumps(_event()).encode()
    status, body = await _raw(
        app,
        b"POST /webhooks/booxi HTTP/1.1\r\nHost: x\r\nX-Secret: s\xe9cret\r\n"
        + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
        + payload,
    )
    assert status == 401
    _mirror_shaped(401, body)
    assert await _snapshot(store) == before


# ---- 6. webhook bodies -----------------------------------------------------------------------
async def test_webhook_with_100k_nested_arrays_is_a_fast_400(
    mirror_app: MirrorApp, store: Store
) -> None:
    before = await _snapshot(store)
    for body in (
        b"[" * 100_000 + b"]" * 100_000,
        b'{"eventId":"e","eventType":"x","content":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"[" * 100_000,  # never closed
    ):
        began = time.monotonic()
        status, answer = await _hook(mirror_app, body)
        assert status == 400, answer
        _mirror_shaped(400, answer)
        assert time.monotonic() - began < 2
    # 33 levels: refused; brackets inside strings do not count
    deep = _event("evt-deep")
    deep["content"]["booking"]["quickNote"] = "[[[[" * 100
    nested: Any = 1
    for _ in range(33):
        nested = [nested]
    deep["content"]["booking"]["extra"] = nested
    assert (await _hook(mirror_app, deep))[0] == 400
    assert await _snapshot(store) == before
    deep["content"]["booking"]["extra"] = nested[0][0][0][0][0][0][0][0]
    assert (await _hook(mirror_app, deep))[1]["outcome"] == "applied"


def _bad_events() -> list[Any]:
    item_span = {"start": "0001-01-01T00:30:00+01:00", "end": "2024-11-22T15:30:00Z"}
    items = copy.deepcopy(_event()["content"]["booking"]["items"])
    items[0]["reservedClientTimespan"] = item_span
    links = copy.deepcopy(_event()["content"]["clientLinks"])
    links[0]["clientId"] = 2**63
    client = {"id": 7, "merchantId": 34497, "firstName": "A", "lastName": "B"}
    return [
        _event(merchantId=2**63),
        _event(merchantId=2**53),
        _event(staffId=2**64),
        _event(staffId=True),
        _event(groupEventId=-1),
        _event(client={"id": 2**63, "firstName": "A"}),
        _event(bookingId="A" * 65),
        _event(bookingId="A/1"),
        {**_event(), "eventId": "e" * 201},
        _event(startsOn="0001-01-01T00:00:00+01:00", totalClientTimespan={}),
        _event(startsOn="9999-12-31T23:59:59-01:00", totalClientTimespan={}),
        _event(totalClientTimespan={"start": "0999-01-01T00:00:00Z"}),
        _event(modifiedOn="0001-01-01T00:00:00Z"),
        _event(modifiedOn="9999-12-31T23:00:00Z"),
        _event(items=items),
        _event(items=5),
        {**_event(), "createdOn": "9999-12-31T23:59:59-01:00"},
        {
            "eventId": "e",
            "eventType": "appointment.updated",
            "content": {**_event()["content"], "clientLinks": links},
        },
        {
            "eventId": "e",
            "eventType": "client.updated",
            "content": {"client": {**client, "id": 2**63}},
        },
        {
            "eventId": "e",
            "eventType": "client.updated",
            "content": {"client": {**client, "modifiedOn": "0001-01-01T00:00:00+01:00"}},
        },
        {"eventId": "e", "eventType": "client.deleted", "content": {"client": {"id": 2**63}}},
        {"eventId": "e", "eventType": "client.deleted", "content": {"client": {"id": True}}},
    ]


@pytest.mark.parametrize("body", _bad_events())
async def test_webhook_ids_and_instants_out_of_range_are_400(
    mirror_app: MirrorApp, store: Store, body: Any
) -> None:
    before = await _snapshot(store)
    status, answer = await _hook(mirror_app, body)
    assert status == 400, answer
    _mirror_shaped(400, answer)
    assert await _snapshot(store) == before


async def test_webhook_unpaired_surrogates_and_header_ids_are_400(
    mirror_app: MirrorApp, store: Store
) -> None:
    before = await _snapshot(store)
    body = json.dumps(_event()).replace('"John"', '"Jo\\ud800hn"').encode()
    status, answer = await _hook(mirror_app, body)
    assert status == 400 and "surrogate" in answer["error"]["message"]
    # no eventId: the webhook-id header stands for it, and must be storable text
    anonymous = _event()
    del anonymous["eventId"]
    payload = json.dumps(anonymous).encode()
    status, answer = await _raw(
        mirror_app,
        b"POST /webhooks/booxi HTTP/1.1\r\nHost: x\r\nwebhook-id: evt-\xff\r\n"
        + f"Authorization: Bearer {WEBHOOK_SECRET}\r\nContent-Length: {len(payload)}\r\n".encode()
        + b"Connection: close\r\n\r\n"
        + payload,
    )
    assert status == 400, answer
    _mirror_shaped(400, answer)
    assert await _snapshot(store) == before


async def test_signed_webhooks_with_such_payloads_are_400_too(
    make_mirror_app, store: Store
) -> None:
    app = await make_mirror_app(webhook={"signing_secret": SIGNING})
    signer = Webhook(SIGNING)
    before = await _snapshot(store)
    bodies = [b"[" * 100_000 + b"]" * 100_000] + [
        json.dumps(b).encode() for b in _bad_events()[:3] + _bad_events()[9:12]
    ]
    for index, body in enumerate(bodies):
        event_id = f"evt-signed-{index}"
        now = dt.datetime.now(dt.UTC)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(event_id, now, body.decode()),
        }
        status, answer = await _hook(app, body, headers)
        assert status == 400, answer
        _mirror_shaped(400, answer)
    assert await _snapshot(store) == before


async def test_write_bodies_nested_100k_deep_are_a_fast_400(
    mirror_app: MirrorApp, store: Store
) -> None:
    before = await _snapshot(store)
    for path in ("/booking", "/client"):
        began = time.monotonic()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                mirror_app.url + "/booking/v1" + path,
                data=b'{"merchantId": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                headers={**AUTH, "Content-Type": "application/json"},
            ) as response,
        ):
            _booxi_shaped(response.status, await response.json())
            assert response.status == 400
        assert time.monotonic() - began < 2
    assert await _snapshot(store) == before


@given(st.datetimes(min_value=dt.datetime(1969, 12, 31), max_value=dt.datetime(2200, 1, 1, 1)))
def test_booxi_whole_second_instants_take_the_same_key_by_the_short_way(
    moment: dt.datetime,
) -> None:
    """``instant_key`` reads Booxi's own form (whole seconds, ``Z``) without a full
    parse: the same key, or the same refusal, as the same instant written with an
    offset, which goes the long way."""
    moment = moment.replace(microsecond=0)
    short = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    long = moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    try:
        expected = instant_key(long)
    except ValueError:
        with pytest.raises(ValueError):
            instant_key(short)
    else:
        assert instant_key(short) == expected
