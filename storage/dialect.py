"""The one place that knows SQL dialects apart: upserts (``INSERT ... ON CONFLICT``).

SQLite and PostgreSQL share the ``on_conflict_do_update`` / ``on_conflict_do_nothing``
API; each needs its own ``insert`` construct.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert(conn: Connection, table: Table) -> Any:
    """An ``INSERT`` for ``table`` that supports ``on_conflict_*`` on this connection."""
    return _insert_for(conn.dialect.name, table)


def _insert_for(name: str, table: Table) -> Any:
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
    columns = tuple(c for c in rows[0] if c not in keys)
    statement = _upsert_statement(
        conn.dialect.name, table, tuple(keys), columns, only_if, returning
    )
    if returning is None:
        conn.execute(statement, list(rows))
        return []
    return list(conn.execute(statement, list(rows)).scalars())


@functools.lru_cache(maxsize=256)
def _upsert_statement(
    dialect: str,
    table: Table,
    keys: tuple[str, ...],
    columns: tuple[str, ...],
    only_if: Callable[[Any], ColumnElement[bool]] | None,
    returning: str | None,
) -> Any:
    """The upsert statement, built once per shape: building it (``excluded``, the
    ``ON CONFLICT`` clause) costs more Python than executing it. ``only_if`` must be a
    function defined once (module level), not a new lambda per call, for the cache to
    hold."""
    statement = _insert_for(dialect, table)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: excluded[name] for name in columns},
        where=only_if(excluded) if only_if is not None else None,
    )
    return statement if returning is None else statement.returning(table.c[returning])


def insert_ignoring_conflicts(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    if rows:
        conn.execute(_ignoring_statement(conn.dialect.name, table), list(rows))


@functools.lru_cache(maxsize=64)
def _ignoring_statement(dialect: str, table: Table) -> Any:
    """``INSERT .. ON CONFLICT DO NOTHING``, built once per table (as ``upsert``'s)."""
    return _insert_for(dialect, table).on_conflict_do_nothing()
