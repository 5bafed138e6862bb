"""Schema migrations (Alembic), applied at start and by ``booxi-mirror db upgrade``.

Several processes may start on one database at once (replicas of ``serve`` on
PostgreSQL, a CLI command beside ``serve`` on SQLite): each upgrade runs in one
transaction that first takes the database's write lock (PostgreSQL: a transaction-level
advisory lock; SQLite: ``BEGIN IMMEDIATE``), so the first one migrates and the others,
once it has committed, find the schema at its head and do nothing. PostgreSQL's DDL is
transactional: a migration that fails leaves nothing behind. An upgrade waits for
another's for up to ``UPGRADE_WAIT_S`` (on SQLite the connection's busy timeout is
raised for it: the engine's 5 s is for ordinary writes, and a migration of a large file,
or of an empty one on a loaded machine, can hold the lock longer).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.engine import BUSY_TIMEOUT_S

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock's key for upgrades: any constant of our own (b"booxmigr").
UPGRADE_LOCK = 0x626F6F786D696772
UPGRADE_WAIT_S = 600


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision``; a no-op when it is there already."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            await connection.run_sync(_busy_timeout, UPGRADE_WAIT_S)
            connection = await connection.execution_options(begin="BEGIN IMMEDIATE")
        async with connection.begin():
            if engine.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK}
                )
            await connection.run_sync(run)
        if engine.dialect.name == "sqlite":  # the pooled connection goes back as it came
            await connection.run_sync(_busy_timeout, BUSY_TIMEOUT_S)


def _busy_timeout(connection: Connection, seconds: float) -> None:
    """Set on the driver's connection itself: a statement through SQLAlchemy would begin
    the transaction that ``BEGIN IMMEDIATE`` must begin."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")
    finally:
        cursor.close()


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
