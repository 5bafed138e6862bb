"""The one place that knows SQL dialects apart: upserts (``INSERT ... ON CONFLICT``).

SQLite and PostgreSQL share the ``on_conflict_do_update`` / ``on_conflict_do_nothing``
API; each needs its own ``insert`` construct.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

# rows per statement: SQLite allows 32,766 bound parameters, a row has up to ~15
CHUNK = 1000


def insert(conn: AsyncConnection, table: Table) -> Any:
    """An ``INSERT`` for ``table`` that supports ``on_conflict_*`` on this connection."""
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"database {name!r} is not supported (use SQLite or PostgreSQL)")


async def upsert(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    only_if: Callable[[Any], ColumnElement[bool]] | None = None,
    returning: str | None = None,
) -> list[Any]:
    """Insert ``rows`` or update them on a key conflict; with ``only_if(excluded)`` an
    existing row is updated only where the condition holds. With ``returning``, the
    value of that column for every row inserted or updated."""
    if not rows:
        return []
    written: list[Any] = []
    columns = [c for c in rows[0] if c not in keys]
    for start in range(0, len(rows), CHUNK):
        statement = insert(conn, table).values(list(rows[start : start + CHUNK]))
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: excluded[name] for name in columns},
            where=only_if(excluded) if only_if is not None else None,
        )
        if returning is None:
            await conn.execute(statement)
        else:
            result = await conn.execute(statement.returning(table.c[returning]))
            written.extend(result.scalars())
    return written


async def insert_ignoring_conflicts(
    conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    for start in range(0, len(rows), CHUNK):
        statement = insert(conn, table).values(list(rows[start : start + CHUNK]))
        await conn.execute(statement.on_conflict_do_nothing())
