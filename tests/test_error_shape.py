"""Every route, every kind of bad request: a clear 4xx (or 503) in one consistent shape,
never a 500, never a stack trace, nothing stored changed."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import pytest

from api.routes import ROUTES
from tests.conftest import API_KEY, Store, booxi_client

AUTH = {"Authorization": f"Bearer {API_KEY}"}
API = [(m, p) for m, p, _, _ in ROUTES if p.startswith("/booking/v1/")]
SAMPLE_PATH = {
    "{bookingId}": "A1",
    "{clientId}": "1",
    "{merchantId}": "1",
    "{serviceId}": "1",
    "{moduleId}": "crm",
}


def _path(template: str) -> str:
    for name, value in SAMPLE_PATH.items():
        template = template.replace(name, value)
    return template


def _booxi_shaped(status: int, body: Any) -> None:
    assert isinstance(body, dict) and set(body) <= {"message", "code", "error"}, body
    assert body["code"] == status and isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in body["message"]


async def _snapshot(store: Store) -> list[Any]:
    tables = ("booking", "calendar_event", "client", "module_link", "inbox_event")
    return [await store.rows(f"SELECT * FROM {t} ORDER BY 1") for t in tables]


@pytest.mark.parametrize(("method", "path"), API)
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Booxi-PartnerKey": "nope"}]
)
async def test_every_api_route_wants_a_key(
    mirror_app, method: str, path: str, headers: dict[str, str]
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, mirror_app.url + _path(path), headers=headers, json={}) as response,
    ):
        assert response.status == 401
        _booxi_shaped(401, await response.json())
        assert API_KEY not in await response.text()


async def test_a_read_only_key_cannot_write(make_mirror_app) -> None:
    app = await make_mirror_app(
        api={"keys": [{"name": "r", "key": "read-only-key-123456", "scopes": ["read"]}]}
    )
    async with aiohttp.ClientSession() as session:
        for method, path in API:
            if method == "GET" or path.endswith("/availability/search"):
                continue
            async with session.request(
                method,
                app.url + _path(path),
                json={"merchantId": 1},
                headers={"Authorization": "Bearer read-only-key-123456"},
            ) as response:
                assert response.status == 403, (method, path)
                _booxi_shaped(403, await response.json())


BAD = [
    ("GET", "/booking/v1/calendar", {"staffId": "abc"}, None),
    ("GET", "/booking/v1/calendar", {"cursor": "%%%"}, None),
    ("GET", "/booking/v1/calendar", {"cursor": "x", "staffId": "1"}, None),
    (
        "GET",
        "/booking/v1/calendar",
        [
            ("staffId", "1"),
            ("from", "2026-01-02T00:00:00Z"),
            ("to", "2026-01-01T00:00:00Z"),
            ("eventType", "Appointment"),
            ("include", "None"),
        ],
        None,
    ),
    (
        "GET",
        "/booking/v1/calendar",
        [
            ("staffId", "1"),
            ("from", "yesterday"),
            ("to", "2026-01-01T00:00:00Z"),
            ("eventType", "Appointment"),
            ("include", "None"),
        ],
        None,
    ),
    (
        "GET",
        "/booking/v1/calendar",
        [
            ("staffId", "1"),
            ("from", "2026-01-01T00:00:00Z"),
            ("to", "2026-01-02T00:00:00Z"),
            ("eventType", "Meeting"),
            ("include", "None"),
        ],
        None,
    ),
    ("GET", "/booking/v1/booking", {}, None),
    ("GET", "/booking/v1/booking", {"clientId": "1", "order": "Sideways"}, None),
    ("GET", "/booking/v1/booking", {"clientId": "1", "bookingMethod": "Boat"}, None),
    ("GET", "/booking/v1/merchant/abc", None, None),
    ("GET", "/booking/v1/merchant/list", {"limit": "1000"}, None),
    ("GET", "/booking/v1/staff/list", {"merchantId": "x"}, None),
    ("GET", "/booking/v1/staff/list", {"cursor": "bm90IGpzb24"}, None),
    ("GET", "/booking/v1/client", {"email": "a@b.c"}, None),
    ("GET", "/booking/v1/client", {"moduleId": "crm"}, None),
    ("GET", "/booking/v1/client/abc", None, None),
    ("POST", "/booking/v1/booking", None, b"{not json"),
    ("POST", "/booking/v1/booking", None, b"[1, 2]"),
    ("POST", "/booking/v1/client", None, b"\xff\xfe"),
    ("PUT", "/booking/v1/client/abc", None, b"{}"),
]


@pytest.mark.parametrize(("method", "path", "params", "body"), BAD)
async def test_malformed_requests_get_400_in_booxis_shape_and_change_nothing(
    mirror_app, store: Store, method: str, path: str, params: Any, body: bytes | None
) -> None:
    before = await _snapshot(store)
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            mirror_app.url + path,
            params=params,
            data=body,
            headers={**AUTH, "Content-Type": "application/json"},
        ) as response,
    ):
        assert response.status == 400, await response.text()
        _booxi_shaped(400, await response.json())
    assert await _snapshot(store) == before


async def test_oversized_bodies_get_413(mirror_app) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/booking/v1/booking", "/webhooks/booxi"):
            huge = io.BytesIO(b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}')
            async with session.post(mirror_app.url + path, data=huge, headers=AUTH) as response:
                assert response.status == 413, path
                body = await response.json()
                assert body.get("code", body.get("error", {}).get("status")) == 413


async def test_unknown_paths_and_methods(mirror_app) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(mirror_app.url + "/booking/v1/nope", headers=AUTH) as response:
            assert response.status == 404
            _booxi_shaped(404, await response.json())
        async with session.get(mirror_app.url + "/nope") as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "not_found"
        async with session.delete(
            mirror_app.url + "/booking/v1/calendar", headers=AUTH
        ) as response:
            assert response.status == 405
            _booxi_shaped(405, await response.json())


async def test_reads_and_writes_needing_booxi_answer_503_when_it_is_down(
    make_sim, make_mirror_app, store: Store
) -> None:
    sim = await make_sim()
    async with booxi_client(sim, timeout_s=1, max_attempts=1) as client:
        app = await make_mirror_app(booxi=client)
        await sim.control("POST", "/_sim/faults", {"outage": True})
        staff_id = next(iter(sim.world.staff))
        async with aiohttp.ClientSession() as session:
            for method, path, params, body in (
                (
                    "GET",
                    "/booking/v1/calendar",
                    [
                        ("staffId", staff_id),
                        ("from", "2099-01-01T00:00:00Z"),
                        ("to", "2099-01-02T00:00:00Z"),
                        ("eventType", "Appointment"),
                        ("include", "None"),
                    ],
                    None,
                ),
                ("GET", f"/booking/v1/booking/{next(iter(sim.world.bookings))}", None, None),
                ("GET", "/booking/v1/merchant/list", None, None),
                (
                    "POST",
                    "/booking/v1/booking",
                    None,
                    {"merchantId": next(iter(sim.world.merchants)), "bookingMethod": "Appointment"},
                ),
            ):
                async with session.request(
                    method, app.url + path, params=params, json=body, headers=AUTH
                ) as response:
                    assert response.status == 503, (path, await response.text())
                    _booxi_shaped(503, await response.json())
