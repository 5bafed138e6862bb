"""Storage on its own: migrations match the models, and versions win by ``modifiedOn``
whatever the order webhooks and polls bring them in."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from mirror.webhooks import apply_events, parse_event
from storage import bookings, changes
from storage.engine import make_engine
from storage.migrate import current_revision, head_revision, upgrade
from storage.models import TABLES
from storage.rows import booking_row
from tests.conftest import Store, sample

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


pytestmark = pytest.mark.both_engines


async def test_migrations_build_exactly_the_models_schema(store: Store) -> None:
    await upgrade(store.engine)  # a second run is a no-op
    assert await current_revision(store.engine) == head_revision()

    def declared(obj: Any, name: str | None, kind: str, reflected: bool, _: Any) -> bool:
        """All but what only PostgreSQL's change log has (``storage.changes``)."""
        if kind == "column" and obj.table.name == "change_log":
            return name not in changes.POSTGRES_ONLY_COLUMNS
        return not (kind == "index" and name in changes.POSTGRES_ONLY_INDEXES)

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"include_object": declared})
        return list(compare_metadata(context, TABLES))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


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


def _collations(conn: Connection) -> dict[tuple[str, str], str | None]:
    rows = conn.execute(
        text(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = 'character varying'"
        )
    )
    return {(row[0], row[1]): row[2] for row in rows}


async def test_migrations_give_key_text_the_models_collation(store: Store) -> None:
    """Alembic's comparison ignores collations: on PostgreSQL every text column has the
    collation the models declare (``COLLATE "C"`` for key text), and no other."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite compares text by bytes: no collation to set")
    from sqlalchemy.dialects import postgresql

    pg = postgresql.dialect()
    declared = {
        (table.name, column.name): "C"
        for table in TABLES.sorted_tables
        for column in table.columns
        if getattr(column.type.dialect_impl(pg), "collation", None) == "C"
    }
    async with store.engine.connect() as conn:
        held = await conn.run_sync(_collations)
    assert {key: value for key, value in held.items() if value is not None} == declared
    assert {("coverage", "ends_on"), ("booking", "booking_id")} <= declared.keys()


@pytest.fixture
def en_us_url() -> Iterator[str]:
    """A new PostgreSQL database whose default collation is ICU's en-US (where "~" sorts
    before the digits, as under en_US.UTF-8), dropped at the end."""
    import os
    import uuid

    from sqlalchemy.engine import make_url

    from tests.conftest import POSTGRES_URL_VARIABLE, _on_postgres

    server = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (set by .ci/run)")
    name = f"booxi_mirror_test_{uuid.uuid4().hex[:16]}"
    _on_postgres(
        server,
        f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
        "LOCALE 'C.UTF-8'",
    )
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    _on_postgres(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_key_text_sorts_by_bytes_under_an_en_us_default_collation(en_us_url: str) -> None:
    """A client history covered from "" to "~" is covered from any instant on, and
    instants sort after "~" nowhere: the database's own order says otherwise."""
    from storage.coverage import read_coverage, record_fill
    from storage.reader import Reader

    engine = make_engine(en_us_url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT '~' < '2026'"))).scalar() is True
            await conn.run_sync(lambda c: record_fill(c, "client:1", "", "~", NOW))
            await conn.run_sync(
                lambda c: record_fill(c, "staff:1", "2026-01-01T00:00:00.000000Z", "~", NOW)
            )
        reader = Reader(engine)
        await reader.start()
        try:
            later = "2026-06-01T00:00:00.000000Z"
            assert (await reader.run(read_coverage, "client:1", later, "~")).complete
            staff = await reader.run(read_coverage, "staff:1", "", "~")
            assert staff.gaps == (("", "2026-01-01T00:00:00.000000Z"),)
            order = await reader.run(
                lambda c: [r[0] for r in c.execute("SELECT ends_on FROM coverage ORDER BY 1")]
            )
            assert order == ["~", "~"]
            keys = await reader.run(
                lambda c: c.execute(
                    "SELECT count(*) FROM coverage WHERE starts_on < ? AND ends_on > ?",
                    ("~", "2026-12-31"),
                ).fetchone()[0]
            )
            assert keys == 2
        finally:
            await reader.close()
    finally:
        await engine.dispose()


async def test_ids_up_to_2_to_the_53_are_stored_and_read(store: Store) -> None:
    """The API takes ids below 2**53: PostgreSQL's columns hold them as SQLite's do."""
    from storage import reads
    from storage.reader import Reader
    from storage.reference import STAFF

    big = 2**53 - 1
    row = {"id": big, "merchant_id": big - 1, "raw": "{}", "source": "poll", "synced_at": NOW}
    await store.writer.run(lambda conn: conn.execute(STAFF.insert().values(**row)))
    reader = Reader(store.engine)
    await reader.start()
    try:
        assert await reader.run(reads.staff_merchant, big) == big - 1
        assert await reader.run(reads.one, "staff", big - 2) is None
    finally:
        await reader.close()


async def test_the_queues_sizes_are_read_from_their_partial_index(store: Store) -> None:
    """``/metrics`` counts every store's queue: the planner can answer from the partial
    index (its terms are the query's, literally), where it would otherwise read every
    booking of the stores (0.8 s on a million, blocking reads behind it)."""
    from storage.store_queue import SIZES_SQL

    sql = SIZES_SQL.replace("?", "'2026-01-01T00:00:00Z'")
    async with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)).all()
        else:  # an empty table is scanned whatever its indexes: ask for the index's use
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = (await conn.exec_driver_sql("EXPLAIN " + sql)).all()
    assert "ix_booking_queue" in " ".join(str(row[-1]) for row in plan)
