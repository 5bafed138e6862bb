"""Booxi's refusals on every first-demand fill, mapped in one place (``api.upstream``).

For each fill route, Booxi answering 400, 404, 429, 503, too slowly, or dropping the
connection gives the mapped status with a JSON body in Booxi's shape, ``Retry-After``
where it applies, never a 500, and nothing half-stored: once Booxi answers again, the
same read succeeds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from api.fill_guard import FILL_GUARD
from mirror.poller import refresh_reference_data
from tests.conftest import API_KEY, MirrorApp, Sim, Store, booxi_client, calendar_params

AUTH = {"Authorization": f"Bearer {API_KEY}"}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

# fault set on the simulator -> (status the mirror answers, Retry-After expected)
FAULTS: dict[str, tuple[dict[str, Any], int, bool]] = {
    "400": ({"force_status": 400}, 502, False),
    "404": ({"force_status": 404}, 404, False),
    "429": ({"force_status": 429}, 503, True),
    "503": ({"force_status": 503}, 503, True),
    "timeout": ({"latency_ms": 1500}, 503, True),
    "dropped": ({"outage": True}, 503, True),
}


def _route(sim: Sim) -> dict[str, tuple[str, Any]]:
    """Each fill route: the path under /booking/v1 and its query, for objects the
    mirror does not hold yet."""
    world = sim.world
    staff_id = next(iter(world.staff))
    booking = next(b for b in world.bookings.values() if b["client"].get("id"))
    client_id = booking["client"]["id"]
    client = world.clients[client_id]
    merchant_id = client["merchantId"]
    start = NOW + dt.timedelta(days=1)
    return {
        "calendar": (
            "/calendar",
            calendar_params(staff_id, start, start + dt.timedelta(days=7), ("Appointment",)),
        ),
        "history": ("/booking", {"clientId": str(client_id)}),
        "booking": (f"/booking/{booking['bookingId']}", None),
        "client": (f"/client/{client_id}", None),
        "client-search": ("/client", {"merchantId": str(merchant_id), "email": client["email"]}),
        "directory": ("/merchant/list", None),
        "book-now": (
            "/staff",
            {"merchantId": str(merchant_id), "serviceId": str(next(iter(world.services)))},
        ),
    }


async def _get(app: MirrorApp, path: str, params: Any) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(app.url + "/booking/v1" + path, params=params, headers=AUTH) as response,
    ):
        return response.status, dict(response.headers), await response.json()


Starter = Callable[..., Awaitable[MirrorApp]]


@pytest.mark.parametrize(
    "route",
    ["calendar", "history", "booking", "client", "client-search", "directory", "book-now"],
)
async def test_booxi_refusals_on_a_fill_map_to_one_answer_each(
    route: str, make_sim: Callable[..., Awaitable[Sim]], store: Store, make_mirror_app: Starter
) -> None:
    sim = await make_sim()
    client = booxi_client(sim, timeout_s=0.5, max_attempts=1)
    if route != "directory":  # the staff member is known; their calendar is not covered
        await refresh_reference_data(client, store.writer)
    app = await make_mirror_app(booxi=client)
    path, params = _route(sim)[route]
    for name, (fault, status, retry_after) in FAULTS.items():
        await sim.control("DELETE", "/_sim/faults")
        await sim.control("POST", "/_sim/faults", fault)
        got, headers, body = await _get(app, path, params)
        if route == "client-search" and status == 503:
            # offline, a search answers what the mirror holds and says it may be partial
            assert got == 200, (name, body)
            assert headers["Cache-Status"] == "booxi-mirror; hit; detail=partial"
            continue
        assert got == status, (name, got, body)
        assert body["code"] == status and isinstance(body["message"], str), (name, body)
        assert ("Retry-After" in headers) == retry_after, (name, headers)
        if name == "400":
            assert "forced by the simulator" in body["message"]
        app.server.app[FILL_GUARD].clear_missing()  # Booxi's 404s are remembered a while
    await sim.control("DELETE", "/_sim/faults")
    got, headers, body = await _get(app, path, params)
    assert got == 200, body
    assert headers["Cache-Status"] == "booxi-mirror; fwd=uri-miss; stored"
    await client.close()
