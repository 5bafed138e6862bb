"""The one place that knows SQL dialects apart: upserts (``INSERT ... ON CONFLICT``).

SQLite and PostgreSQL share the ``on_conflict_do_update`` / ``on_conflict_do_nothing``
API; each needs its own ``insert`` construct.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert(conn: Connection, table: Table) -> Any:
    """An ``INSERT`` for ``table`` that supports ``on_conflict_*`` on this connection."""
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"database {name!r} is not supported (use SQLite or PostgreSQL)")


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    only_if: Callable[[Any], ColumnElement[bool]] | None = None,
    returning: str | None = None,
) -> list[Any]:
    """Insert ``rows`` or update them on a key conflict; with ``only_if(excluded)`` an
    existing row is updated only where the condition holds. With ``returning``, the
    value of that column for every row inserted or updated.

    One statement, compiled once and cached, executed for all rows (``executemany``):
    building a multi-row ``VALUES`` per call would recompile it every time.
    """
    if not rows:
        return []
    statement = insert(conn, table)
    excluded = statement.excluded
    columns = [c for c in rows[0] if c not in keys]
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: excluded[name] for name in columns},
        where=only_if(excluded) if only_if is not None else None,
    )
    if returning is None:
        conn.execute(statement, list(rows))
        return []
    result = conn.execute(statement.returning(table.c[returning]), list(rows))
    return list(result.scalars())


def insert_ignoring_conflicts(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    if rows:
        conn.execute(insert(conn, table).on_conflict_do_nothing(), list(rows))
