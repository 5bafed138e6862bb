"""Whatever a client sends, the simulator answers in Booxi's error shape, never a 500."""

from __future__ import annotations

import json

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from tests.conftest import Sim

NAMES = st.sampled_from(
    [
        "staffId",
        "from",
        "to",
        "eventType",
        "include",
        "cursor",
        "clientId",
        "merchantId",
        "order",
        "bookingMethod",
        "offset",
        "limit",
        "email",
    ]
)
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "2026-11-22T10:00:00Z",
            "1",
            "-1",
            "0",
            "Appointment",
            "None",
            "Descending",
            "99999999999999999999",
            "1e5",
            "null",
        ]
    ),
)
PATHS = st.sampled_from(
    [
        "/calendar",
        "/booking",
        "/staff/list",
        "/service/list",
        "/merchant/list",
        "/client",
        "/serviceCategory/list",
        "/staff",
    ]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "merchantId",
                    "staffId",
                    "startsOn",
                    "items",
                    "client",
                    "serviceId",
                    "id",
                    "status",
                    "bookingMethod",
                    "email",
                    "firstName",
                    "lastName",
                    "groupEventId",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_booxi_answer(status: int, body: object) -> None:
    assert status < 500, body
    if status >= 400:
        assert isinstance(body, dict) and body["code"] == status and body["message"]


@SETTINGS
@given(path=PATHS, params=st.lists(st.tuples(NAMES, VALUES), max_size=8))
async def test_any_query_string_gets_a_clean_answer(sim: Sim, path: str, params: list) -> None:
    status, body = await sim.get(path, params)
    _assert_booxi_answer(status, body)


@SETTINGS
@given(
    body=JSON,
    method=st.sampled_from(
        [
            "POST /booking",
            "PUT /booking/{b}",
            "POST /client",
            "PUT /client/{c}",
            "POST /availability/search",
        ]
    ),
)
async def test_any_json_body_gets_a_clean_answer(sim: Sim, body: object, method: str) -> None:
    verb, path = method.split(" ")
    path = path.format(b=next(iter(sim.world.bookings)), c=next(iter(sim.world.clients)))
    async with sim.session.request(
        verb, sim.api + path, data=json.dumps(body), headers={"Content-Type": "application/json"}
    ) as response:
        text = await response.text()
        _assert_booxi_answer(response.status, json.loads(text) if text else None)
