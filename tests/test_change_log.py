"""The change log (``storage.changes``): the same writes leave the same rows on SQLite and
PostgreSQL; on PostgreSQL the writer reads exactly its own transaction's rows, and a
``ChangeFeed`` hands over other connections' committed transactions, never rolled-back
ones, and says when its connection is lost."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, text, update
from sqlalchemy.engine import Connection

from storage import changes
from storage.column_types import UtcDateTime
from storage.engine import make_engine
from storage.migrate import upgrade
from storage.models import TABLES
from storage.writer import Writer
from tests.conftest import Store

NOW = dt.datetime(2026, 1, 5, 8, tzinfo=dt.UTC)
STRINGS = {
    "starts_on": "2026-01-05T09:00:00Z",
    "ends_on": "2026-01-05T10:00:00Z",
    "booking_id": "b-1",
    "entity": "staff",
    "scope": "staff:12@3",
    "raw": "{}",
}
# What each table's row then changes, besides its ``raw`` (each its own UPDATE).
CHANGES: dict[str, list[dict[str, Any]]] = {
    "booking": [
        {"staff_id": 8, "starts_on": "2026-01-06T09:00:00Z", "ends_on": "2026-01-06T10:00:00Z"},
        {"client_id": None},
        {"group_event_id": 4},
    ],
    "calendar_event": [{"staff_id": 8}, {"provisional": True}],
    "time_slot": [{"ends_on": "2026-01-05T11:00:00Z"}],
    "coverage": [{"ends_on": "2026-01-07T00:00:00Z"}],
    "sync_state": [{"last_error": "down"}, {"scope": "client:5"}, {"last_success_at": NOW}],
    "service_staff": [{"staff_id": 9}],
    "module_link": [{"external_id": "x-2"}, {"entity": "service"}],
    "client": [{"email": "someone@example.com"}],
    "pii_block": [{"reason": "erased"}],
}


def _row(table: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in TABLES.tables[table].columns:
        if isinstance(column.type, UtcDateTime):
            row[column.name] = NOW
        elif column.type.python_type is int:
            row[column.name] = 7
        elif column.type.python_type is bool:
            row[column.name] = False
        else:
            row[column.name] = STRINGS.get(column.name, f"{column.name}-1")
    return row


def _steps(table: str) -> list[tuple[str, Any]]:
    """Each write of the script, named: insert; bookkeeping only; nothing at all; each
    change; delete."""
    t = TABLES.tables[table]
    row = _row(table)
    keys = {c.name for c in t.primary_key.columns}
    current = dict(row)
    steps: list[tuple[str, Any]] = [(f"{table} insert", insert(t).values(row))]

    def where() -> Any:
        return [t.c[k] == current[k] for k in keys]

    bookkeeping = {c: NOW + dt.timedelta(hours=1) if c == "synced_at" else "webhook" for c in row}
    bookkeeping = {c: v for c, v in bookkeeping.items() if c in changes.BOOKKEEPING}
    if bookkeeping:
        steps.append((f"{table} bookkeeping", update(t).where(*where()).values(bookkeeping)))
    first = next((c for c in row if c not in keys and c not in changes.BOOKKEEPING), None)
    if first is not None:
        steps.append((f"{table} same", update(t).where(*where()).values({first: row[first]})))
    for values in ([{"raw": '{"v": 2}'}] if "raw" in row else []) + CHANGES.get(table, []):
        steps.append((f"{table} {sorted(values)}", update(t).where(*where()).values(values)))
        current.update(values)
    steps.append((f"{table} delete", delete(t).where(*where())))
    return steps


async def _log_of_each_step(engine: Any) -> list[tuple[str, list[tuple[Any, ...]]]]:
    found = []
    for table in changes.TAGS:
        for name, statement in _steps(table):
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM change_log"))
                await conn.execute(statement)
            async with engine.connect() as conn:
                rows = await conn.execute(text("SELECT tag, lo, hi FROM change_log"))
                found.append((name, sorted(tuple(r) for r in rows)))
    return found


@pytest.mark.both_engines
async def test_the_same_writes_leave_the_same_change_rows_on_both_engines(
    store: Store, tmp_path: Path
) -> None:
    reference = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'reference.db'}")
    await upgrade(reference)
    try:
        expected = await _log_of_each_step(reference)
    finally:
        await reference.dispose()
    assert await _log_of_each_step(store.engine) == expected
    by_name = dict(expected)
    assert by_name["booking bookkeeping"] == by_name["booking same"] == []
    day, next_day = (
        ("2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"),
        (
            "2026-01-06T09:00:00Z",
            "2026-01-06T10:00:00Z",
        ),
    )
    assert by_name["booking ['ends_on', 'staff_id', 'starts_on']"] == sorted(
        [
            ("booking:b-1", None, None),
            ("client:7", None, None),
            ("group:7", None, None),
            ("staff:7", *day),
            ("staff:8", *next_day),
        ]
    )
    assert by_name["booking ['client_id']"] == sorted(
        [("booking:b-1", None, None), ("client:7", None, None), ("group:7", None, None)]
        + [("staff:8", *next_day)]
    )
    assert by_name["coverage insert"] == [("cover:staff:12", *day)]
    assert by_name["sync_state ['scope']"] == [
        ("sync:client:5", None, None),
        ("sync:staff:12", None, None),
    ]
    assert by_name["module_link ['entity']"] == [("service:7", None, None), ("staff:7", None, None)]
    assert by_name["pii_block insert"] == [("*", None, None)]
    assert all(rows for name, rows in expected if name.endswith(("insert", "delete")))


# ---- PostgreSQL: transactions ------------------------------------------------------------
def _note(conn: Connection, note: str) -> None:
    conn.execute(
        text("UPDATE client SET raw = :raw WHERE id = 7"), {"raw": f'{{"note": "{note}"}}'}
    )


async def _with_a_client(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(insert(TABLES.tables["client"]).values(_row("client")))
        await conn.execute(text("DELETE FROM change_log"))


async def _postgres_store(url: str) -> Store:
    engine = make_engine(url)
    await upgrade(engine)
    writer = Writer(engine)
    await writer.start()
    return Store(engine, writer, None, url)


async def test_the_writer_reads_exactly_its_own_transactions_rows_on_postgresql(
    postgres_url: str,
) -> None:
    store = await _postgres_store(postgres_url)
    other = make_engine(postgres_url)
    collected: list[tuple[str | None, list[changes.Change]]] = []
    remove = store.writer.after_commit(changes.transaction_changes, collected.append)
    try:
        await _with_a_client(store)
        async with other.connect() as alongside:  # another process, committing meanwhile
            await alongside.begin()
            await alongside.execute(
                insert(TABLES.tables["staff"]).values({**_row("staff"), "id": 99})
            )

            def job(conn: Connection) -> None:
                _note(conn, "mine")
                conn.execute(insert(TABLES.tables["pii_block"]).values(_row("pii_block")))

            await store.writer.run(job)
            assert [(c.tag, c.lo, c.hi) for c in collected[-1][1]] == [
                ("client:7", None, None),
                ("*", None, None),
            ]
            await alongside.commit()
        await store.writer.run(lambda conn: conn.execute(text("SELECT 1")))
        assert collected[-1] == (None, [])  # wrote nothing: no transaction id, no rows
        # ``seq`` is not commit order: the transaction alongside took its number first
        everything = await store.rows("SELECT tag FROM change_log ORDER BY seq")
        assert [r["tag"] for r in everything] == ["ref", "client:7", "*"]
    finally:
        remove()
        await other.dispose()
        await store.writer.close()
        await store.engine.dispose()


async def test_the_change_feed_hands_over_committed_transactions_and_says_when_lost(
    postgres_url: str,
) -> None:
    store = await _postgres_store(postgres_url)
    await _with_a_client(store)
    feed = changes.ChangeFeed(store.engine)
    await feed.open()
    try:
        assert await feed.next(0.05) == {}  # nothing: a ping
        async with store.engine.connect() as conn:
            await conn.begin()
            await conn.run_sync(_note, "rolled back")
            await conn.rollback()
            tx = await conn.scalar(text("SELECT pg_current_xact_id()::text"))
            await conn.run_sync(_note, "one")
            await conn.run_sync(_note, "two")  # twice: one notification
            await conn.commit()
        started = asyncio.get_running_loop().time()
        found = await feed.next(2)
        assert asyncio.get_running_loop().time() - started < 1
        assert {t: [(c.tag, c.lo) for c in rows] for t, rows in found.items()} == {
            tx: [("client:7", None), ("client:7", None)]
        }
        assert await feed.next(0.05) == {}  # the rolled-back one never comes
        async with store.engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": changes.APPLICATION_NAME},
            )
        with pytest.raises(changes.ChangeFeedLostError):
            await feed.next(2)
    finally:
        await feed.close()
        await store.writer.close()
        await store.engine.dispose()


async def test_a_truncate_changes_everything_on_postgresql(postgres_url: str) -> None:
    store = await _postgres_store(postgres_url)
    try:
        await _with_a_client(store)
        await store.writer.run(lambda conn: conn.execute(text("TRUNCATE client")))
        assert [r["tag"] for r in await store.rows("SELECT tag FROM change_log")] == ["*"]
    finally:
        await store.writer.close()
        await store.engine.dispose()


async def test_the_change_log_is_pruned_by_age_on_postgresql(postgres_url: str) -> None:
    store = await _postgres_store(postgres_url)
    try:
        await _with_a_client(store)
        await store.writer.run(lambda conn: _note(conn, "old"))
        async with store.engine.begin() as conn:
            await conn.execute(text("UPDATE change_log SET at = now() - interval '10 minutes'"))
        await store.writer.run(lambda conn: _note(conn, "new"))
        await store.writer.run(lambda conn: changes.prune_older(conn, 300))
        assert len(await store.rows("SELECT seq FROM change_log")) == 1
    finally:
        await store.writer.close()
        await store.engine.dispose()


async def test_migration_0010_goes_down_and_up_again_on_postgresql(postgres_url: str) -> None:
    from alembic import command

    from storage.migrate import alembic_config

    engine = make_engine(postgres_url)
    triggers = "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'change_log_%'"

    def downgrade(conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0010-1")

    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.scalar(text(triggers)) == 4 * len(changes.TAGS)
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with engine.connect() as conn:
            assert await conn.scalar(text(triggers)) == 0
            columns = await conn.scalars(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'change_log'"
                )
            )
            assert sorted(columns) == ["hi", "lo", "seq", "tag"]
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.scalar(text(triggers)) == 4 * len(changes.TAGS)
    finally:
        await engine.dispose()


async def test_the_probe_sees_each_commit_of_another_connection_before_its_next_answer(
    tmp_path: Path,
) -> None:
    """``Probe.last_seq`` queries only when SQLite's WAL-index header changed: every
    commit of another connection, however quick the succession, and across checkpoints
    that restart the WAL, shows in the very next answer; with nothing committed, the
    answer stays."""
    path = tmp_path / "mirror.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(engine)
    await engine.dispose()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    probe = changes.Probe(str(path))
    try:

        def truth() -> int:
            return changes.last_seq(other)

        assert probe.last_seq() == truth() == 0
        for n in range(300):
            other.execute(
                "INSERT INTO time_slot (id, staff_id, starts_on, ends_on, type, raw, source, "
                "synced_at) VALUES (?, 1, '2026-01-05T09:00:00Z', '2026-01-05T10:00:00Z', "
                "'Available', '{}', 'poll', '2026-01-05T08:00:00Z')",
                (n,),
            )
            if n % 50 == 49:  # the next commit writes the WAL from its start again
                other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert probe.last_seq() == truth() == n + 1
            assert probe.last_seq() == n + 1  # nothing new: the same answer
        other.execute("DELETE FROM time_slot WHERE id < 10")
        assert probe.last_seq() == truth() == 310
    finally:
        probe.close()
        other.close()
