"""PollLeadership: exactly one replica polls; another takes over when the leader's
connection goes; on SQLite the one ``serve`` always polls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mirror.leader import POLL_LOCK_KEY, PollLeadership, try_period
from storage.engine import make_engine


class Replica:
    """One replica's leadership over an engine of its own, recording what it was told."""

    def __init__(self, url: str, try_every_s: float = 0.2) -> None:
        self.engine = make_engine(url)
        self.events: list[str] = []
        self.leadership = PollLeadership(
            self.engine,
            on_acquired=lambda: self.events.append("acquired"),
            on_lost=self._lost,
            try_every_s=try_every_s,
        )

    async def _lost(self) -> None:
        self.events.append("lost")

    async def close(self) -> None:
        await self.leadership.close()
        await self.engine.dispose()


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[list[Replica]]:
    made = [Replica(postgres_url), Replica(postgres_url)]
    yield made
    for replica in made:
        await replica.close()


async def _until(condition: Any, within_s: float = 5.0) -> None:
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the replicas
            await asyncio.sleep(0.05)


def test_try_period_is_a_quarter_interval_within_bounds() -> None:
    assert try_period(300) == 5.0
    assert try_period(8) == 2.0
    assert try_period(0.4) == 0.5


async def test_on_sqlite_serve_always_polls(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="mirror.leader")
    replica = Replica(f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}")
    await replica.leadership.start()
    assert replica.leadership.is_leader
    await replica.close()
    assert replica.events == ["acquired", "lost"]
    assert [r.message for r in caplog.records] == ["poll.leader.acquired", "poll.leader.released"]


async def test_exactly_one_of_two_replicas_polls(replicas: list[Replica]) -> None:
    first, second = replicas
    await first.leadership.start()
    await second.leadership.start()
    await asyncio.sleep(0.5)  # a few tries of the second
    assert (first.leadership.is_leader, second.leadership.is_leader) == (True, False)
    assert (first.events, second.events) == (["acquired"], [])


async def test_the_other_replica_takes_over_when_the_leader_stops(
    replicas: list[Replica],
) -> None:
    first, second = replicas
    await first.leadership.start()
    await second.leadership.start()
    await first.leadership.close()
    assert first.events == ["acquired", "lost"]
    await _until(lambda: second.leadership.is_leader, within_s=2)
    assert second.events == ["acquired"]


async def test_a_leader_whose_connection_dies_stops_polling_and_another_takes_over(
    replicas: list[Replica], postgres_url: str, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="mirror.leader")
    first, second = replicas
    await first.leadership.start()
    await second.leadership.start()
    admin = make_engine(postgres_url)
    try:  # what PostgreSQL does when the leader's process is killed: its session ends
        async with admin.connect() as conn:
            terminated = (
                await conn.execute(
                    text(  # this database's poll lock only: other test workers hold
                        # advisory locks of their own (migrations, the shared budget)
                        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l"
                        " JOIN pg_database d ON d.oid = l.database"
                        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                        " AND d.datname = current_database()"
                        " AND (l.classid::bigint << 32 | l.objid::bigint) = :key"
                    ),
                    {"key": POLL_LOCK_KEY},
                )
            ).all()
        assert len(terminated) == 1
    finally:
        await admin.dispose()
    await _until(lambda: not first.leadership.is_leader, within_s=2)
    assert first.events == ["acquired", "lost"]
    await _until(lambda: second.leadership.is_leader, within_s=2)
    assert second.events == ["acquired"]
    messages = [r.message for r in caplog.records]
    assert messages.count("poll.leader.acquired") == 2
    assert "poll.leader.lost" in messages
    await asyncio.sleep(0.5)  # the old leader tries again, and stays a follower
    assert not first.leadership.is_leader


async def test_a_replica_that_cannot_start_polling_lets_the_lock_go(
    replicas: list[Replica],
) -> None:
    first, second = replicas

    def broken() -> None:
        raise RuntimeError("the poller did not start")

    first.leadership._on_acquired = broken
    with pytest.raises(RuntimeError, match="did not start"):
        await first.leadership.start()
    assert not first.leadership.is_leader and first.events == ["lost"]
    await second.leadership.start()
    assert second.leadership.is_leader


def test_the_poll_leader_gauge_says_whether_this_replica_polls() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from api.metrics import PollLeaderCollector

    leading = [False]
    registry = CollectorRegistry()
    registry.register(PollLeaderCollector(lambda: leading[0]))
    assert b"booxi_mirror_poll_leader 0.0" in generate_latest(registry)
    leading[0] = True
    assert b"booxi_mirror_poll_leader 1.0" in generate_latest(registry)
