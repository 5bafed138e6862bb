"""Webhooks for stores the mirror does not serve: acknowledged (``ignored``, so Booxi
stops retrying), not applied, kept in the inbox by event id only (no body, no booking
or client id), so their clients never show up in ``privacy report``; a repeat is still
a duplicate."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import aiohttp
import pytest

from storage import reference
from storage.erasure import retention_report
from storage.rows import merchant_row
from tests.conftest import WEBHOOK_SECRET, MirrorApp, Store, sample

pytestmark = pytest.mark.both_engines

AUTH = {"Authorization": f"Bearer {WEBHOOK_SECRET}", "Content-Type": "application/json"}
SERVED, OTHER = 1, 34497  # the sample event's booking is at store 34497
CLIENT_ID = 10374296  # the sample event's client
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PERSONAL = ("John", "Smith", "john.smith@example.org", "+17219992437", "CUSTOMER-123")


def _event(event_id: str, merchant_id: int = OTHER) -> dict[str, Any]:
    event = copy.deepcopy(sample("webhook-appointment-created.json"))
    event["eventId"] = event_id
    event["content"]["booking"]["merchantId"] = merchant_id
    return event


def _client_event(event_id: str, merchant_id: int, client_id: int = 77) -> dict[str, Any]:
    client = {
        "id": client_id,
        "merchantId": merchant_id,
        "firstName": "Ada",
        "lastName": "Byron",
        "email": "ada@example.org",
        "modifiedOn": "2024-01-01T00:00:00Z",
    }
    link = {"clientId": client_id, "moduleId": "crm", "externalId": "C-77"}
    return {
        "eventId": event_id,
        "eventType": "client.updated",
        "content": {"client": client, "clientLinks": [link]},
    }


async def _post(app: MirrorApp, body: Any, method: str = "POST") -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, app.webhook_url, data=json.dumps(body).encode(), headers=AUTH
        ) as response,
    ):
        return response.status, await response.json()


async def _held(store: Store) -> dict[str, int]:
    counts = {}
    for table in ("booking", "calendar_event", "client", "module_link", "pii_block"):
        counts[table] = (await store.rows(f"SELECT count(*) AS n FROM {table}"))[0]["n"]
    return counts


async def _privacy_report(store: Store) -> list[dict[str, object]]:
    async with store.engine.connect() as conn:
        return await conn.run_sync(retention_report, NOW)


async def _seed_store(store: Store, merchant_id: int) -> None:
    def job(conn: Any) -> None:
        reference.upsert_merchants(conn, [merchant_row({"id": merchant_id}, "poll", NOW)])

    await store.writer.run(job)


async def _assert_only_the_event_id_is_kept(store: Store, event_id: str) -> None:
    rows = await store.rows("SELECT * FROM inbox_event WHERE event_id = :e", e=event_id)
    assert len(rows) == 1
    row = rows[0]
    assert row["outcome"] == "ignored"
    assert row["booking_id"] is None and row["client_id"] is None
    assert row["body"] == ""
    assert "not served" in row["detail"]
    for value in PERSONAL:
        assert value not in json.dumps(row, default=str)


async def test_an_event_of_a_store_outside_merchant_ids_is_acknowledged_not_applied(
    make_mirror_app, store: Store
) -> None:
    app = await make_mirror_app(sync={"merchant_ids": [SERVED]})
    status, body = await _post(app, _event("evt-other"))
    assert (status, body) == (200, {"eventId": "evt-other", "outcome": "ignored"})
    assert await _held(store) == {
        "booking": 0,
        "calendar_event": 0,
        "client": 0,
        "module_link": 0,
        "pii_block": 0,
    }
    await _assert_only_the_event_id_is_kept(store, "evt-other")
    assert CLIENT_ID not in [r["clientId"] for r in await _privacy_report(store)]
    # Booxi retries (POST or PUT): still a duplicate, still nothing applied
    status, body = await _post(app, _event("evt-other"), method="PUT")
    assert (status, body["outcome"]) == (200, "duplicate")
    rows = await store.rows("SELECT duplicates FROM inbox_event WHERE event_id = 'evt-other'")
    assert rows == [{"duplicates": 1}]
    assert (await _held(store))["booking"] == 0
    # the served store's event is applied as ever
    status, body = await _post(app, _event("evt-served", SERVED))
    assert (status, body["outcome"]) == (200, "applied")
    assert (await _held(store))["booking"] == 1
    assert CLIENT_ID in [r["clientId"] for r in await _privacy_report(store)]


async def test_client_events_of_an_unserved_store_are_ignored_deletions_are_not(
    make_mirror_app, store: Store
) -> None:
    app = await make_mirror_app(sync={"merchant_ids": [SERVED]})
    status, body = await _post(app, _client_event("c-other", OTHER))
    assert (status, body["outcome"]) == (200, "ignored")
    assert await store.rows("SELECT id FROM client") == []
    assert await store.rows("SELECT entity_id FROM module_link") == []
    rows = await store.rows("SELECT body, client_id FROM inbox_event")
    assert rows == [{"body": "", "client_id": None}]
    assert await _privacy_report(store) == []
    # a served store's client, then its deletion (which carries no store): applied
    assert (await _post(app, _client_event("c-served", SERVED)))[1]["outcome"] == "applied"
    deleted = {"eventId": "c-del", "eventType": "client.deleted", "content": {"client": {"id": 77}}}
    assert (await _post(app, deleted))[1]["outcome"] == "applied"
    assert await store.rows("SELECT id FROM client") == []


async def test_without_merchant_ids_a_store_with_no_reference_data_is_not_served(
    make_mirror_app, store: Store
) -> None:
    await _seed_store(store, SERVED)
    app = await make_mirror_app()  # [sync] merchant_ids empty: every store polled
    status, body = await _post(app, _event("evt-unknown-store"))
    assert (status, body["outcome"]) == (200, "ignored")
    assert (await _held(store))["booking"] == 0
    await _assert_only_the_event_id_is_kept(store, "evt-unknown-store")
    assert await _privacy_report(store) == []
    assert (await _post(app, _event("evt-unknown-store")))[1]["outcome"] == "duplicate"
    assert (await _post(app, _event("evt-known-store", SERVED)))[1]["outcome"] == "applied"
    assert (await _held(store))["booking"] == 1


async def test_before_the_first_poll_every_store_is_served(make_mirror_app, store: Store) -> None:
    """**choice**: with no store list yet (no ``merchant_ids``, no reference data), an
    event is applied rather than lost."""
    app = await make_mirror_app()
    assert (await _post(app, _event("evt-early")))[1]["outcome"] == "applied"
    assert (await _held(store))["booking"] == 1
