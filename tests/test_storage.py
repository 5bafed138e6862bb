"""Storage on its own: migrations match the models, and versions win by ``modifiedOn``
whatever the order webhooks and polls bring them in."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from mirror.webhooks import apply_events, parse_event
from storage import bookings
from storage.engine import make_engine
from storage.migrate import current_revision, head_revision, upgrade
from storage.models import TABLES
from storage.rows import booking_row
from tests.conftest import sample

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def test_migrations_build_exactly_the_models_schema(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await upgrade(engine)
    await upgrade(engine)  # a second run is a no-op
    assert await current_revision(engine) == head_revision()

    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), TABLES))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    await engine.dispose()


def _versions(count: int) -> list[dict[str, Any]]:
    base = sample("webhook-appointment-created.json")["content"]["booking"]
    versions = []
    for index in range(count):
        version = copy.deepcopy(base)
        version["modifiedOn"] = (NOW + dt.timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
        version["quickNote"] = f"version {index}"
        version["status"] = "Cancelled" if index % 3 == 2 else "Approved"
        versions.append(version)
    return versions


def _via_webhook(conn: Connection, version: dict[str, Any], delivery: int) -> None:
    event = {
        "eventId": f"evt-{version['quickNote']}-{delivery % 2}",
        "eventType": "appointment.updated",
        "content": {"booking": version},
    }
    apply_events(conn, [parse_event(json.dumps(event).encode(), {}, "secret")])


def _via_poll(conn: Connection, version: dict[str, Any]) -> None:
    written = bookings.upsert_bookings(
        conn, [booking_row(version, "poll", NOW)], strictly_newer=False
    )
    if written:
        bookings.replace_derived_events(conn, [version], source="poll", now=NOW)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.lists(
        st.tuples(st.integers(0, 4), st.booleans(), st.integers(0, 3)), min_size=1, max_size=12
    )
)
def test_webhooks_and_polls_in_any_order_leave_the_newest_version(
    tmp_path: Path, order: list[tuple[int, bool, int]]
) -> None:
    versions = _versions(5)
    engine = create_engine("sqlite://")
    TABLES.create_all(engine)
    with engine.begin() as conn:
        for index, by_webhook, delivery in order:
            if by_webhook:
                _via_webhook(conn, versions[index], delivery)
            else:
                _via_poll(conn, versions[index])
        newest = versions[max(index for index, _, _ in order)]
        raw = conn.execute(text("SELECT raw FROM booking")).scalar_one()
        assert json.loads(raw) == newest
        events = conn.execute(text("SELECT count(*) FROM calendar_event")).scalar_one()
        assert events == (0 if newest["status"] == "Cancelled" else len(newest["items"]))
    engine.dispose()
