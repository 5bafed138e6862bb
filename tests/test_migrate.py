"""Migrations when several processes start on one database at once (replicas)."""

from __future__ import annotations

import asyncio

import pytest

from storage.engine import make_engine
from storage.migrate import current_revision, head_revision, upgrade

pytestmark = pytest.mark.both_engines


async def test_concurrent_upgrades_of_an_empty_database_all_succeed(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    try:
        async with asyncio.timeout(60):  # without the upgrade lock they deadlock
            await asyncio.gather(*(upgrade(engine) for engine in engines))
        for engine in engines:
            assert await current_revision(engine) == head_revision()
    finally:
        for engine in engines:
            await engine.dispose()
