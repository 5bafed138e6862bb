"""Keys, Booxi's fair-use limits, and the API fault switches of the simulator."""

from __future__ import annotations

import time

import aiohttp
import pytest

from simulator.ratelimit import FairUse
from tests.conftest import MERCHANT_KEY, PARTNER_KEY, Sim


async def _raw_get(sim: Sim, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(sim.api + path, headers=headers) as response,
    ):
        return response.status, await response.json()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Booxi-PartnerKey": "wrong"},
        {"Booxi-APIKey": PARTNER_KEY + "x"},
        {"Authorization": f"Bearer {PARTNER_KEY}"},
    ],
)
async def test_requests_without_a_valid_key_get_401(sim: Sim, headers: dict[str, str]) -> None:
    status, body = await _raw_get(sim, "/staff/list", headers)
    assert status == 401
    assert body == {"message": body["message"], "code": 401}
    assert PARTNER_KEY not in body["message"]


async def test_either_key_is_accepted(sim: Sim) -> None:
    for headers in ({"Booxi-PartnerKey": PARTNER_KEY}, {"Booxi-APIKey": MERCHANT_KEY}):
        status, _ = await _raw_get(sim, "/staff/list", headers)
        assert status == 200


async def test_control_api_needs_no_key(sim: Sim) -> None:
    async with aiohttp.ClientSession() as session, session.get(sim.url + "/_sim/faults") as r:
        assert r.status == 200


async def test_more_than_five_requests_a_second_get_429_with_retry_after(make_sim) -> None:
    sim = await make_sim(rate_limit=True)
    statuses = []
    retry_after = None
    for _ in range(8):
        async with sim.session.get(sim.api + "/merchant/list") as response:
            statuses.append(response.status)
            if response.status == 429:
                retry_after = response.headers.get("Retry-After")
                body = await response.json()
                assert body["code"] == 429
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 3
    assert retry_after is not None and int(retry_after) >= 1


async def test_a_400_counts_double(make_sim) -> None:
    sim = await make_sim(rate_limit=True)
    statuses = []
    for path in ["/merchant/list?limit=0"] * 2 + ["/merchant/list"] * 2:
        async with sim.session.get(sim.api + path) as response:
            statuses.append(response.status)
    assert statuses == [400, 400, 200, 429]  # 2 + 2 + 1 = 5: the fourth is over


async def test_rate_limit_can_be_switched_on_and_off(sim: Sim) -> None:
    for _ in range(10):
        status, _ = await sim.get("/merchant/list")
        assert status == 200
    await sim.control("POST", "/_sim/faults", {"rate_limit": True})
    statuses = [(await sim.get("/merchant/list"))[0] for _ in range(7)]
    assert 429 in statuses


def test_fair_use_per_minute_budget_and_retry_after() -> None:
    now = [1000.0]
    limiter = FairUse(per_second=10, per_minute=300, clock=lambda: now[0])
    for second in range(60):
        now[0] = 1000.0 + second
        for _ in range(5):
            assert limiter.admit("k") is None
    now[0] = 1059.5
    wait = limiter.admit("k")
    assert wait == 1  # the minute is full; its oldest hits leave the window at 1060
    assert limiter.admit("other key") is None
    now[0] = 1060.01
    assert limiter.admit("k") is None


async def test_latency_fault_delays_answers(sim: Sim) -> None:
    await sim.control("POST", "/_sim/faults", {"latency_ms": 300})
    started = time.monotonic()
    status, _ = await sim.get("/merchant/list")
    assert status == 200
    assert time.monotonic() - started >= 0.29


async def test_error_rate_fault_answers_503_in_booxi_shape(sim: Sim) -> None:
    await sim.control("POST", "/_sim/faults", {"error_rate": 1})
    status, body = await sim.get("/merchant/list")
    assert (status, body["code"]) == (503, 503)
    await sim.control("POST", "/_sim/faults", {"error_rate": 0.5})
    statuses = {(await sim.get("/merchant/list"))[0] for _ in range(40)}
    assert statuses == {200, 503}


async def test_throttle_fault_answers_429(sim: Sim) -> None:
    await sim.control("POST", "/_sim/faults", {"throttle_rate": 1.0})
    async with sim.session.get(sim.api + "/merchant/list") as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"


async def test_outage_drops_connections_but_control_api_still_answers(sim: Sim) -> None:
    await sim.control("POST", "/_sim/faults", {"outage": True})
    with pytest.raises(aiohttp.ClientConnectionError):
        await sim.get("/merchant/list")
    faults = await sim.control("GET", "/_sim/faults")
    assert faults["outage"] is True
    await sim.control("POST", "/_sim/faults", {"outage": False})
    status, _ = await sim.get("/merchant/list")
    assert status == 200


async def test_faults_reset_to_defaults(sim: Sim) -> None:
    await sim.control("POST", "/_sim/faults", {"latency_ms": 5, "webhook_reorder": True})
    faults = await sim.control("DELETE", "/_sim/faults")
    assert faults["latency_ms"] == 0 and faults["webhook_reorder"] is False


@pytest.mark.parametrize(
    "body",
    [
        {"latency_ms": -1},
        {"latency_ms": 1.5},
        {"error_rate": 2},
        {"error_rate": "x"},
        {"outage": 1},
        {"rate_limit": "yes"},
        {"webhook_reorder": None},
        {"nope": 1},
        {"webhook_drop_rate": True},
        {"webhook_delay_ms": 10**9},
        [1],
        "x",
    ],
)
async def test_bad_fault_settings_are_400_and_change_nothing(sim: Sim, body: object) -> None:
    before = await sim.control("GET", "/_sim/faults")
    async with sim.session.post(sim.url + "/_sim/faults", json=body) as response:
        assert response.status == 400
        error = await response.json()
        assert error["code"] == 400
    assert await sim.control("GET", "/_sim/faults") == before


async def test_request_log_records_every_api_call(sim: Sim) -> None:
    await sim.control("DELETE", "/_sim/requests")
    await sim.get("/merchant/list")
    await sim.get("/nope")
    log = (await sim.control("GET", "/_sim/requests"))["requests"]
    assert [(r["method"], r["path"], r["status"], r["key"]) for r in log] == [
        ("GET", "/booking/v1/merchant/list", 200, "Booxi-PartnerKey"),
        ("GET", "/booking/v1/nope", 404, "Booxi-PartnerKey"),
    ]
    assert all(isinstance(r["at"], float) for r in log)
