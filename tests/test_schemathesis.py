"""Schemathesis over the mirror's own ``/openapi.json``: every operation, with a valid key
and with an invalid one, never answers a 5xx and always answers what the document says
(status code, content type, headers, body schema).

The mirror runs for real (a simulator behind it, its database filled by one sync pass)
on a loopback port. Schemathesis' pytest integration calls the test synchronously and
sends with ``requests``, so the servers run in a thread of their own with their own event
loop, started once for the module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import openapi
from api.access_log import AccessLogger
from api.routes import ROUTES
from tests.conftest import API_KEY, MERCHANT_KEY, PARTNER_KEY, WEBHOOK_SECRET, owned_by_the_app

BOOKING_API = "/booking/v1/"
MIRROR_API = "/mirror/v1/"  # the mirror's extensions (a store's queue): the same API keys
WEBHOOKS = "/webhooks/"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# In CI: a few deterministic examples per operation, ~10 s. A longer, random run (e.g.
# from a bench script): MIRROR_FUZZ_EXAMPLES=200 MIRROR_FUZZ_RANDOM=1 MIRROR_FUZZ_COVERAGE=1
EXAMPLES = int(os.environ.get("MIRROR_FUZZ_EXAMPLES", "6"))
RANDOM = os.environ.get("MIRROR_FUZZ_RANDOM") == "1"
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# Schemathesis' own knobs: no shrinking, and only the phases that fit the time budget
# (the coverage phase alone sends hundreds of requests per operation).
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": EXAMPLES, "no-shrink": True, "deterministic": not RANDOM},
        "phases": {
            "examples": {"enabled": False},  # known ids stand in for them (_use_known_ids)
            "coverage": {"enabled": os.environ.get("MIRROR_FUZZ_COVERAGE") == "1"},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)


@dataclasses.dataclass
class Running:
    """The mirror and its simulator, served from a background thread's event loop."""

    mirror_url: str = ""
    ids: dict[str, int | str] = dataclasses.field(default_factory=dict)
    ready: threading.Event = dataclasses.field(default_factory=threading.Event)
    error: BaseException | None = None
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None


async def _serve(running: Running, db: Path) -> None:
    from api.app import create_app
    from mirror.budget import RateBudget
    from mirror.client import BooxiClient
    from mirror.config import Config
    from mirror.sync import run_pass
    from simulator import SimSettings
    from simulator import create_app as create_sim
    from simulator.keys import WORLD
    from storage.engine import make_engine
    from storage.writer import Writer

    running.loop = asyncio.get_running_loop()
    running.stop = asyncio.Event()
    sim_settings = SimSettings(
        partner_key=PARTNER_KEY,
        merchant_key=MERCHANT_KEY,
        stores=2,
        staff_per_store=2,
        clients=20,
        page_size=20,
        rate_limit=False,
    )
    sim = TestServer(create_sim(sim_settings), host="127.0.0.1")
    await sim.start_server()
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    writer = Writer(engine)
    booxi = BooxiClient(
        str(sim.make_url("/booking/v1")), PARTNER_KEY, budget=RateBudget(1000, 100_000)
    )

    config = Config.model_validate(
        {
            "webhook": {"secret": WEBHOOK_SECRET},
            "api": {
                "keys": [{"name": "all", "key": API_KEY, "scopes": ["read", "write"]}],
                # every random id is a fill: a budget that lets them reach Booxi
                "fills_per_minute": 1_000_000,
                "fill_burst": 1_000_000,
            },
        }
    )
    app = create_app(
        config,
        engine=engine,
        writer=writer,
        booxi=booxi,
        parts=[owned_by_the_app(engine, writer, booxi, migrate=True)],
    )
    mirror = TestServer(app, host="127.0.0.1")
    try:
        await mirror.start_server(access_log_class=AccessLogger)  # as serve: no queries
        assert (await run_pass(booxi, writer, engine, horizon_days=7)).ok
        world = sim.app[WORLD]
        running.ids = {
            "merchantId": next(iter(world.merchants)),
            "staffId": next(iter(world.staff)),
            "clientId": next(iter(world.clients)),
            "serviceId": next(iter(world.services)),
            "serviceCategoryId": next(iter(world.categories)),
            "bookingId": next(iter(world.bookings)),
        }
        running.mirror_url = str(mirror.make_url("")).rstrip("/")
        running.ready.set()
        await running.stop.wait()
    finally:
        await mirror.close()  # then every part it runs on stops
        await sim.close()


def _thread(running: Running, db: Path) -> None:
    try:
        asyncio.run(_serve(running, db))
    except BaseException as error:  # reported to the test thread
        running.error = error
    finally:
        running.ready.set()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = Running()
    thread = threading.Thread(
        target=_thread, args=(running, tmp_path_factory.mktemp("st") / "mirror.db"), daemon=True
    )
    thread.start()
    assert running.ready.wait(60), "the servers did not start within 60 s"
    if running.error is not None:
        raise running.error
    yield running
    assert running.loop is not None and running.stop is not None
    running.loop.call_soon_threadsafe(running.stop.set)
    thread.join(30)
    assert not thread.is_alive()
    if running.error is not None:
        raise running.error


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


# The document the mirror serves, built the same way here so that pytest can make one test
# per operation at collection time (schemathesis' lazy ``from_fixture`` does not run under
# pytest 9.2); ``test_the_served_document_is_the_one_tested`` checks that they are equal.
DOCUMENT = openapi.build_document(ROUTES)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


def test_the_served_document_is_the_one_tested(servers: Running, http: requests.Session) -> None:
    response = http.get(servers.mirror_url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(DOCUMENT))


def _headers(path: str, valid: bool) -> dict[str, str]:
    if path.startswith(WEBHOOKS):
        secret = WEBHOOK_SECRET if valid else "not-the-webhook-secret"
        return {"Authorization": f"Bearer {secret}"}
    if path.startswith((BOOKING_API, MIRROR_API)):
        return {"Authorization": f"Bearer {API_KEY if valid else 'not-a-mirror-key'}"}
    return {}


def _use_known_ids(case: Any, ids: dict[str, int | str]) -> None:
    """Ids the mirror holds in place of random ones, so that answers are not all 404s."""
    for name, value in ids.items():
        if name in (case.path_parameters or {}):
            case.path_parameters[name] = value
        if case.query and name in case.query:
            case.query[name] = value


@schema.parametrize()
@schema.given(known=st.booleans())
@SETTINGS
def test_every_operation_answers_as_documented(
    case: Any, known: bool, servers: Running, http: requests.Session
) -> None:
    """A valid key (read and write, every store): whatever the schema allows, the answer
    is below 500 and matches its documented status, content type and schema. Half the
    examples name objects the mirror holds."""
    if known:
        _use_known_ids(case, servers.ids)
    case.call_and_validate(
        base_url=servers.mirror_url, session=http, headers=_headers(case.path, True), checks=CHECKS
    )


@schema.parametrize()
@SETTINGS
def test_an_invalid_key_gets_401_as_documented(
    case: Any, servers: Running, http: requests.Session
) -> None:
    """A wrong API key (or webhook secret): 401 in the route's error shape, documented."""
    response = case.call_and_validate(
        base_url=servers.mirror_url,
        session=http,
        headers=_headers(case.path, False),
        checks=CHECKS,
    )
    # (the coverage phase, when enabled, also tries methods a path does not take: 405)
    other_method = case.method.upper() != case.operation.method.upper()
    if case.path.startswith(BOOKING_API):  # the key is checked first, whatever the route
        body = response.json()
        assert response.status_code == 401, body
        assert body["code"] == 401 and body["message"], body
    elif case.path.startswith((WEBHOOKS, MIRROR_API)) and not other_method:
        assert response.status_code == 401, response.text
        assert response.json()["error"]["status"] == 401
    elif other_method:
        assert response.status_code == 405, response.text
    else:
        assert response.status_code < 400  # the probes, metrics and this document are open
