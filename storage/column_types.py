"""Column types shared by the tables: aware UTC datetimes, and text ordered by bytes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime in and out, whatever the database keeps.

    SQLite keeps no zone: values are stored as naive UTC and come back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError("UtcDateTime takes timezone-aware datetimes only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def key_text(length: int | None = None) -> String:
    """Text compared and ordered as a key (Booxi's instants, booking ids, coverage scopes
    and bounds, module link ids): byte order on both engines. SQLite compares text by
    bytes; PostgreSQL by the database's collation unless told, and under en_US.UTF-8 and
    others ``"~"`` (coverage's upper bound, ``storage.coverage.WHOLE``) sorts before the
    digits. ``COLLATE "C"`` there (migration 0008)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")
