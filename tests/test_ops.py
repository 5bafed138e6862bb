"""Operations: liveness, health, readiness, metrics, the OpenAPI document, access logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from api.access_log import AccessLogger
from api.app import create_app
from api.auth import MERCHANT_KEY_ROUTES
from api.openapi import OPERATIONS
from api.routes import ROUTES
from mirror.config import Config
from storage import reference, sync_state
from storage.engine import make_engine
from storage.rows import staff_row
from tests.conftest import (
    API_KEY,
    WEBHOOK_SECRET,
    MirrorApp,
    Sim,
    Store,
    booxi_client,
    sample,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _get(url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as response:
        text = await response.text()
        is_json = response.content_type == "application/json"
        return response.status, json.loads(text) if is_json else text


async def _record_success(
    store: Store, staff_id: int, at: dt.datetime | None = None, merchant_id: int = 1
) -> dt.datetime:
    at = at or _now()
    await store.writer.run(
        lambda conn: sync_state.record_success(
            conn,
            sync_state.staff_scope(staff_id),
            kind="staff",
            attempted_at=at,
            window=(at, at),
            merchant_id=merchant_id,
            staff_id=staff_id,
        )
    )
    return at


async def _record_failure(store: Store, scope: str, kind: str, error: str) -> None:
    await store.writer.run(
        lambda conn: sync_state.record_failure(
            conn, scope, kind=kind, attempted_at=dt.datetime.now(dt.UTC), error=error
        )
    )


# liveness and health


async def test_livez_and_healthz_answer_ok(mirror_app: MirrorApp) -> None:
    for path in ("/livez", "/healthz"):
        assert await _get(mirror_app.url + path) == (200, {"status": "ok"})


async def test_healthz_and_readyz_fail_when_the_database_does_not_answer(
    store: Store, tmp_path, aiohttp_server: AiohttpServer
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'dir' / 'mirror.db'}")

    async def disposed_at_the_end(_: web.Application) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = create_app(Config(), engine=engine, writer=store.writer, parts=[disposed_at_the_end])
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    status, body = await _get(base + "/healthz")
    assert status == 503
    assert body["error"]["code"] == "unavailable"
    status, body = await _get(base + "/readyz")
    assert status == 503
    assert body == {
        "status": "unready",
        "checks": {
            "database": {"status": "fail", "error": "OperationalError"},
            "sync": {"status": "unknown"},
            "upstream": {"status": "unknown"},
        },
    }
    status, text = await _get(base + "/metrics")  # the request metrics still come out
    assert status == 200
    assert "booxi_mirror_http_request_duration_seconds_count" in text


# readiness


async def test_readyz_is_degraded_before_any_sync(mirror_app: MirrorApp) -> None:
    status, body = await _get(mirror_app.url + "/readyz")

    assert status == 200
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["sync"]["status"] == "degraded"
    assert body["checks"]["sync"]["detail"] == "no staff calendar synced yet"
    assert body["checks"]["upstream"]["status"] == "unknown"


async def test_readyz_is_ready_after_a_staff_success(mirror_app: MirrorApp, store: Store) -> None:
    synced_at = await _record_success(store, 1)

    status, body = await _get(mirror_app.url + "/readyz")

    assert status == 200
    assert body["status"] == "ready"
    sync = body["checks"]["sync"]
    assert sync["status"] == "ok"
    assert sync["staff"] == 1
    assert sync["oldest_success_at"] == synced_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 0 <= sync["age_s"] < 60
    assert sync["staleness_s"] == 900
    assert body["checks"]["upstream"]["status"] == "ok"


async def test_readyz_is_degraded_when_booxi_was_unreachable_at_the_last_attempt(
    mirror_app: MirrorApp, store: Store
) -> None:
    await _record_success(store, 1)
    await _record_failure(
        store, "staff:1", "staff", "BooxiUnavailable: cannot reach Booxi for GET /calendar"
    )

    status, body = await _get(mirror_app.url + "/readyz")

    assert status == 200
    assert body["status"] == "degraded"
    assert body["checks"]["sync"]["status"] == "ok"  # the data is still recent
    upstream = body["checks"]["upstream"]
    assert upstream["status"] == "degraded"
    assert upstream["failing"] == 1
    assert "cannot reach" not in json.dumps(body)  # counts and times, not error texts

    await _record_success(store, 1)  # Booxi answers again
    status, body = await _get(mirror_app.url + "/readyz")
    assert body["status"] == "ready"


async def test_readyz_counts_a_failed_reference_refresh_and_ignores_other_errors(
    mirror_app: MirrorApp, store: Store
) -> None:
    await _record_success(store, 1)
    await _record_failure(store, "staff:1", "staff", "BooxiRejected: 400 bad request")
    _, body = await _get(mirror_app.url + "/readyz")
    assert body["status"] == "ready"

    await _record_failure(store, "reference", "reference", "BooxiUnavailable: timed out")
    _, body = await _get(mirror_app.url + "/readyz")
    assert body["status"] == "degraded"
    assert body["checks"]["upstream"]["failing"] == 1


async def test_readyz_is_degraded_when_the_sync_is_older_than_the_staleness_bound(
    make_mirror_app, store: Store
) -> None:
    app = await make_mirror_app(api={"staleness_s": 600})
    await _record_success(store, 1, at=_now() - dt.timedelta(minutes=5))
    await _record_success(store, 2, at=_now() - dt.timedelta(minutes=20))

    _, body = await _get(app.url + "/readyz")

    assert body["status"] == "degraded"
    sync = body["checks"]["sync"]
    assert sync["detail"] == "older than staleness_s"
    assert sync["staleness_s"] == 600
    assert 1190 < sync["age_s"] < 1300


async def test_readyz_leaves_out_staff_that_booxi_no_longer_lists(
    mirror_app: MirrorApp, store: Store
) -> None:
    await _record_success(store, 1, at=_now() - dt.timedelta(days=3))  # since removed
    await _record_success(store, 2)
    await store.writer.run(
        lambda conn: reference.upsert_staff(
            conn, [staff_row({"id": 2, "merchantId": 1}, "poll", _now())]
        )
    )

    _, body = await _get(mirror_app.url + "/readyz")

    assert body["status"] == "ready"
    assert body["checks"]["sync"]["staff"] == 1


async def test_readyz_is_degraded_while_a_staff_calendar_never_synced(
    mirror_app: MirrorApp, store: Store
) -> None:
    await _record_success(store, 1)
    await store.writer.run(
        lambda conn: sync_state.record_failure(
            conn,
            "staff:2",
            kind="staff",
            attempted_at=_now(),
            error="BooxiRejected: 404",
            merchant_id=1,
            staff_id=2,
        )
    )

    _, body = await _get(mirror_app.url + "/readyz")

    assert body["status"] == "degraded"
    assert body["checks"]["sync"]["detail"] == "1 staff calendar(s) never synced"


async def test_readyz_is_degraded_until_the_poller_reached_every_staff_member(
    make_mirror_app, store: Store
) -> None:
    await store.writer.run(
        lambda conn: reference.upsert_staff(
            conn,
            [staff_row({"id": i, "merchantId": 1}, "poll", _now()) for i in (1, 2)]
            + [staff_row({"id": 3, "merchantId": 2}, "poll", _now())],
        )
    )
    await _record_success(store, 1)
    app = await make_mirror_app()

    _, body = await _get(app.url + "/readyz")
    assert body["status"] == "degraded"
    assert body["checks"]["sync"]["staff"] == 3
    assert body["checks"]["sync"]["detail"] == "2 staff calendar(s) never synced"
    _, text = await _get(app.url + "/metrics")
    lag = _samples(text, "booxi_mirror_sync_lag_seconds")
    assert lag['{merchant_id="1"}'] == lag['{merchant_id="2"}'] == float("inf")

    await _record_success(store, 2)
    only_store_1 = await make_mirror_app(sync={"merchant_ids": [1]})
    _, body = await _get(only_store_1.url + "/readyz")
    assert body["status"] == "ready"
    assert body["checks"]["sync"]["staff"] == 2
    _, text = await _get(only_store_1.url + "/metrics")
    assert list(_samples(text, "booxi_mirror_sync_lag_seconds")) == ['{merchant_id="1"}']


# metrics


def _samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric's samples in the text exposition."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(\{{.*\}})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


async def test_metrics_report_requests_sync_webhooks_and_upstream(
    make_mirror_app, store: Store, sim: Sim
) -> None:
    client = booxi_client(sim, max_attempts=1)
    app = await make_mirror_app(booxi=client)
    merchant_id = next(iter(sim.world.merchants))
    await client.get_merchant(merchant_id)
    await sim.control("POST", "/_sim/faults", {"outage": True})
    with pytest.raises(Exception, match="Booxi"):
        await client.get_merchant(merchant_id)
    await _record_success(store, 1, at=_now() - dt.timedelta(seconds=100), merchant_id=7)
    await _record_success(store, 2, merchant_id=7)
    await _record_success(store, 3, merchant_id=8)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            app.webhook_url,
            json=sample("webhook-appointment-created.json"),
            headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"},
        ) as response:
            assert response.status == 200
        for path in ("/livez", "/livez", "/no/such/path", "/booking/v1/staff/list"):
            async with session.get(app.url + path):
                pass

    status, text = await _get(app.url + "/metrics")

    assert status == 200
    histogram = _samples(text, "booxi_mirror_http_request_duration_seconds_count")
    assert histogram['{method="GET",route="livez",status_class="2xx"}'] == 2
    assert histogram['{method="GET",route="unmatched",status_class="4xx"}'] == 1
    assert histogram['{method="GET",route="staff-list",status_class="4xx"}'] == 1  # no key
    assert histogram['{method="POST",route="webhook",status_class="2xx"}'] == 1
    lag = _samples(text, "booxi_mirror_sync_lag_seconds")
    assert 99 < lag['{merchant_id="7"}'] < 160
    assert lag['{merchant_id="8"}'] < 60
    assert 0 <= _samples(text, "booxi_mirror_webhook_lag_seconds")[""] < 60
    assert _samples(text, "booxi_mirror_upstream_requests_total") == {'{method="GET"}': 2}
    assert _samples(text, "booxi_mirror_upstream_errors_total") == {'{kind="unavailable"}': 1}
    granted = _samples(text, "booxi_mirror_rate_limit_granted_total")
    assert granted['{priority="POLL"}'] == 2
    for name in (
        "booxi_mirror_rate_limit_waits_total",
        "booxi_mirror_rate_limit_wait_seconds_total",
        "booxi_mirror_rate_limit_queued",
        "booxi_mirror_upstream_retries_total",
    ):
        assert _samples(text, name), name
    await client.close()


async def test_metrics_of_two_apps_stay_apart(make_mirror_app) -> None:
    first, second = await make_mirror_app(), await make_mirror_app()
    for _ in range(3):
        await _get(first.url + "/livez")

    _, text = await _get(second.url + "/metrics")

    assert 'route="livez"' not in text
    assert "booxi_mirror_sync_lag_seconds" in text  # described, with no store yet
    assert "booxi_mirror_upstream_requests_total" not in text  # no Booxi client here


async def test_metrics_speak_openmetrics_when_asked(mirror_app: MirrorApp) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            mirror_app.url + "/metrics", headers={"Accept": "application/openmetrics-text"}
        ) as response,
    ):
        assert response.content_type == "application/openmetrics-text"
        assert (await response.text()).endswith("# EOF\n")


# the OpenAPI document


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


async def test_openapi_describes_every_route(mirror_app: MirrorApp) -> None:
    status, document = await _get(mirror_app.url + "/openapi.json")

    assert status == 200
    assert document["openapi"] == "3.1.0"
    assert {"title", "version"} <= set(document["info"])
    assert {"schemas", "responses", "securitySchemes", "headers"} <= set(document["components"])
    for ref in _refs(document):
        assert _resolve(document, ref) is not None, ref
    operation_ids = []
    for method, path, _handler, name in ROUTES:
        assert name in OPERATIONS, f"api.openapi.OPERATIONS has no entry for {name}"
        operation = document["paths"][path][method.lower()]
        operation_ids.append(operation["operationId"])
        assert operation["responses"], name
        path_params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert path_params == set(re.findall(r"\{(\w+)\}", path)), name
        if path.startswith("/booking/v1/"):
            merchant: list[dict[str, list[str]]] = (
                [{"merchantKey": []}] if name in MERCHANT_KEY_ROUTES else []
            )
            assert operation["security"] == [{"bearer": []}, {"partnerKey": []}, *merchant], name
    assert len(operation_ids) == len(set(operation_ids)) == len(ROUTES)


async def test_openapi_documents_parameters_headers_and_error_shapes(
    mirror_app: MirrorApp,
) -> None:
    _, document = await _get(mirror_app.url + "/openapi.json")
    paths = document["paths"]

    def query(path: str) -> dict[str, Any]:
        params = paths[path]["get"]["parameters"]
        return {p["name"]: p for p in params if p["in"] == "query"}

    calendar = query("/booking/v1/calendar")
    assert set(calendar) == {
        "staffId",
        "from",
        "to",
        "eventType",
        "include",
        "language",
        "cursor",
    }
    assert calendar["eventType"]["explode"] is True
    assert calendar["include"]["schema"]["type"] == "array"
    assert {"clientId", "from", "to", "merchantId", "bookingMethod", "order", "cursor"} <= set(
        query("/booking/v1/booking")
    )
    ok = paths["/booking/v1/calendar"]["get"]["responses"]["200"]
    assert set(ok["headers"]) == {
        "Cache-Status",
        "Age",
        "X-Mirror-Synced-At",
        "X-Mirror-Coverage",
        "X-Mirror-Covered-From",
    }
    assert "headers" not in paths["/booking/v1/booking"]["post"]["responses"]["200"]
    schemas = document["components"]["schemas"]
    assert set(schemas["BooxiError"]["required"]) == {"message", "code"}
    assert set(schemas["MirrorError"]["properties"]["error"]["required"]) == {
        "code",
        "message",
        "status",
    }
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["partnerKey"]["name"] == "Booxi-PartnerKey"
    assert schemes["partnerKey"]["in"] == "header"
    assert schemes["merchantKey"]["name"] == "Booxi-APIKey"


# access log


async def test_access_log_is_one_structured_line_without_the_query(
    store: Store, aiohttp_server: AiohttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config.model_validate(
        {"api": {"keys": [{"name": "all", "key": API_KEY, "scopes": ["read"]}]}}
    )
    app = create_app(config, engine=store.engine, writer=store.writer)
    server = await aiohttp_server(app, access_log_class=AccessLogger)
    base = str(server.make_url("")).rstrip("/")
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            await _get(
                base + "/booking/v1/client",
                params={"merchantId": "1", "email": "jane.doe@example.com"},
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
            await _get(base + "/nowhere?phoneNumber=5551234567")
    finally:
        await server.close()  # every request logged

    records = [r for r in caplog.records if r.getMessage() == "http.request"]
    assert len(records) == 2
    search, unmatched = records
    assert search.levelno == logging.INFO
    assert search.method == "GET"  # type: ignore[attr-defined]
    assert search.route == "client-search"  # type: ignore[attr-defined]
    assert search.path == "/booking/v1/client"  # type: ignore[attr-defined]
    assert isinstance(search.status, int)  # type: ignore[attr-defined]
    assert isinstance(search.duration_ms, float)  # type: ignore[attr-defined]
    assert search.remote == "127.0.0.1"  # type: ignore[attr-defined]
    assert search.bytes > 0  # type: ignore[attr-defined]
    assert unmatched.route == "unmatched"  # type: ignore[attr-defined]
    assert unmatched.status == 404  # type: ignore[attr-defined]
    logged = json.dumps([vars(r) for r in caplog.records], default=str)
    assert "example.com" not in logged
    assert "5551234567" not in logged
    assert API_KEY not in logged
