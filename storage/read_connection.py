"""What a read function is given: ``ReadConnection``, the part of ``sqlite3.Connection``
the read functions use, met on PostgreSQL by ``PostgresReads``.

The read functions (``storage.reads``, ``storage.coverage``, ``storage.book_now``,
``storage.inspection``) are written once, in SQL both engines run, with ``?``
parameters: ``execute(sql, params)`` returns rows that can be iterated as tuples or
taken with ``fetchone()`` / ``fetchall()``. On SQLite that is a plain ``sqlite3``
connection (the lean path: no translation, no wrapper). On PostgreSQL ``PostgresReads``
rewrites ``?`` to asyncpg's ``$1..$n`` (once per statement text, cached) and hands the
statement to SQLAlchemy's ``exec_driver_sql``, whose buffered result has the same three
ways to read it.

Values come back typed on PostgreSQL (``timestamptz``: aware datetimes; booleans:
``bool``) and as stored on SQLite (naive UTC text, 0/1): readers go through
``storage.times.stored_utc`` and ``bool()``; ``at_parameter`` gives a timestamp
parameter in the form each engine compares.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol


class Rows(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class ReadConnection(Protocol):
    """A connection read functions query, inside one read-only snapshot."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Rows: ...


class PostgresReads:
    """``ReadConnection`` on PostgreSQL: ``execute`` is given a function that runs one
    statement with its parameters (a SQLAlchemy ``exec_driver_sql``, synchronous or
    bridged) and returns the buffered result."""

    def __init__(self, run: Callable[[str, tuple[Any, ...]], Any]) -> None:
        self._run = run

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        result: Rows = self._run(numbered(sql), tuple(parameters))
        return result


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """``?`` placeholders as ``$1..$n`` (asyncpg's), leaving quoted text alone."""
    parts: list[str] = []
    count = 0
    quote: str | None = None
    for char in sql:
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "?":
            count += 1
            parts.append(f"${count}")
            continue
        parts.append(char)
    return "".join(parts)


def is_sqlite(conn: ReadConnection) -> bool:
    return isinstance(conn, sqlite3.Connection)


def at_parameter(conn: ReadConnection, moment: dt.datetime) -> Any:
    """An aware datetime as a parameter compared with our ``_at`` columns: naive UTC text
    on SQLite (as ``storage.column_types.UtcDateTime`` stores it), the datetime itself
    on PostgreSQL (``timestamptz``)."""
    if is_sqlite(conn):
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment
