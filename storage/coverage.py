"""Coverage: which calendar ranges and client histories the mirror may answer alone.

Write side (functions of a SQLAlchemy ``Connection``, run by the writer) and read side
(functions of a ``storage.read_connection.ReadConnection``, run by the reader). Instants
are the fixed-width keys of ``storage.times.instant_key``; a client history is covered
from ``""`` to ``"~"`` (before and after every instant), which holds in byte order:
SQLite's, and PostgreSQL's with the columns' ``COLLATE "C"`` (migration 0008).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import select
from sqlalchemy.engine import Connection

from storage.dialect import upsert
from storage.models import Coverage, table_of
from storage.read_connection import ReadConnection
from storage.times import stored_utc

COVERAGE = table_of(Coverage)
WHOLE = ("", "~")


def client_scope(client_id: int) -> str:
    return f"client:{client_id}"


def record_poll(conn: Connection, scope: str, start: str, end: str, now: dt.datetime) -> None:
    """A poll covered ``[start, end]``: the poll row grows to span it, fresh as of now."""
    row = conn.execute(
        select(COVERAGE.c.starts_on, COVERAGE.c.ends_on).where(
            COVERAGE.c.scope == scope, COVERAGE.c.kind == "poll"
        )
    ).first()
    if row is not None:
        start, end = min(start, row.starts_on), max(end, row.ends_on)
        conn.execute(COVERAGE.delete().where(COVERAGE.c.scope == scope, COVERAGE.c.kind == "poll"))
    upsert(
        conn,
        COVERAGE,
        [{"scope": scope, "kind": "poll", "starts_on": start, "ends_on": end, "covered_at": now}],
        ["scope", "kind", "starts_on"],
    )


def record_fill(conn: Connection, scope: str, start: str, end: str, now: dt.datetime) -> None:
    upsert(
        conn,
        COVERAGE,
        [{"scope": scope, "kind": "fill", "starts_on": start, "ends_on": end, "covered_at": now}],
        ["scope", "kind", "starts_on"],
    )


@dataclasses.dataclass(frozen=True)
class Covered:
    """How ``[start, end]`` of a scope stands: the parts not covered, and the oldest
    ``covered_at`` of the parts that are (None when nothing is)."""

    gaps: tuple[tuple[str, str], ...]
    synced_at: dt.datetime | None

    @property
    def complete(self) -> bool:
        return not self.gaps


def read_coverage(conn: ReadConnection, scope: str, start: str, end: str) -> Covered:
    rows = conn.execute(
        "SELECT starts_on, ends_on, covered_at FROM coverage WHERE scope = ? "
        "AND starts_on <= ? AND ends_on >= ? ORDER BY starts_on",
        (scope, end, start),
    ).fetchall()
    gaps: list[tuple[str, str]] = []
    cursor = start
    oldest: dt.datetime | None = None
    for row_start, row_end, covered_at in rows:
        if row_start > cursor:
            gaps.append((cursor, row_start))
        cursor = max(cursor, row_end)
        moment = _aware(covered_at)
        oldest = moment if oldest is None or moment < oldest else oldest
    if cursor < end:
        gaps.append((cursor, end))
    return Covered(tuple(gaps), oldest)


def _aware(value: object) -> dt.datetime:
    return stored_utc(value)
