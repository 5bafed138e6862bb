"""Every bad request to the simulator gets Booxi's error shape and a 4xx, never a 500."""

from __future__ import annotations

import io

import aiohttp
import pytest

from tests.conftest import Sim

BAD_REQUESTS = [
    ("GET", "/nope", None, None, 404),
    ("DELETE", "/calendar", None, None, 405),
    ("PATCH", "/booking/A1", None, None, 405),
    ("GET", "/calendar", {"staffId": "abc"}, None, 400),
    ("GET", "/calendar", {"staffId": "99999999999999999999999"}, None, 400),
    ("GET", "/calendar", {"cursor": "%%%"}, None, 400),
    ("GET", "/booking", {"clientId": "1", "from": "soon"}, None, 400),
    ("GET", "/booking", {"clientId": "1", "clientId ": "2", "bookingMethod": "Boat"}, None, 400),
    ("GET", "/booking", {"cursor": "x", "clientId": "1"}, None, 400),
    ("GET", "/booking/does-not-exist", None, None, 404),
    ("GET", "/staff/list", {"cursor": "bm90IGpzb24"}, None, 400),
    ("GET", "/merchant/list", {"limit": "ten"}, None, 400),
    ("GET", "/merchant/abc", None, None, 400),
    ("GET", "/client/1/moduleLink/crm", None, None, 404),
    ("GET", "/service/abc/availability", None, None, 400),
    ("GET", "/service/1/availability", None, None, 404),
    ("POST", "/booking", None, b"", 400),
    ("POST", "/booking", None, b"{not json", 400),
    ("POST", "/booking", None, b"[1, 2]", 400),
    ("POST", "/booking", None, b'"text"', 400),
    ("POST", "/booking", None, b"\xff\xfe", 400),
    ("POST", "/booking", None, b'{"merchantId": true}', 400),
    ("POST", "/booking", None, b'{"merchantId": 1.5}', 400),
    ("POST", "/booking", None, b'{"merchantId": 1e400}', 400),
    ("PUT", "/booking/A1", None, b'{"status": "Cancelled"}', 404),
    ("POST", "/client", None, b"{}", 400),
    ("PUT", "/client/1", None, b'{"firstName": "x"}', 404),
    ("DELETE", "/client/1", None, None, 404),
    ("POST", "/availability/search", None, b'{"merchantId": 1}', 404),
    ("POST", "/availability/search", None, b"{}", 400),
]


@pytest.mark.parametrize(("method", "path", "params", "body", "status"), BAD_REQUESTS)
async def test_bad_request_gets_booxi_error_shape(
    sim: Sim, method: str, path: str, params: dict | None, body: bytes | None, status: int
) -> None:
    async with sim.session.request(
        method,
        sim.api + path,
        params=params,
        data=body,
        headers={"Content-Type": "application/json"},
    ) as response:
        payload = await response.json()
        assert response.status == status, payload
        assert set(payload) <= {"message", "code", "error"}
        assert payload["code"] == status
        assert isinstance(payload["message"], str) and payload["message"]
        assert "Traceback" not in payload["message"]


async def test_oversized_body_is_413_in_booxi_shape(sim: Sim) -> None:
    huge = io.BytesIO(b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    async with sim.session.post(
        sim.api + "/booking", data=huge, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 413
        assert (await response.json())["code"] == 413


async def test_bad_requests_leave_the_state_untouched(sim: Sim) -> None:
    before = await sim.control("GET", "/_sim/state")
    for method, path, params, body, _ in BAD_REQUESTS:
        async with sim.session.request(method, sim.api + path, params=params, data=body) as r:
            assert r.status < 500
    assert await sim.control("GET", "/_sim/state") == before


async def test_control_api_errors_share_the_shape(sim: Sim) -> None:
    async with aiohttp.ClientSession() as session:
        for method, path in (
            ("GET", "/_sim/nope"),
            ("PUT", "/_sim/state"),
            ("POST", "/_sim/webhooks/drain?timeout=x"),
        ):
            async with session.request(method, sim.url + path) as response:
                assert 400 <= response.status < 500
                assert set(await response.json()) == {"message", "code"}
