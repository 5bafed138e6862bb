"""The latest drift audits' findings (table ``audit_run``): recorded by ``booxi-mirror
audit`` through the writer, read by the dashboard (``api.dashboard``) through the reader.

Counts of differences per staff member and kind only (``mirror.audit.KINDS``): no
object's data, so nothing here is personal. The last ``KEEP`` audits are kept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from storage.models import AuditRun, table_of
from storage.read_connection import ReadConnection
from storage.times import stored_utc

AUDIT_RUN = table_of(AuditRun)
KEEP = 50
LOOK_BACK = 20  # audits searched for the latest one that covered a store

Counts = Mapping[int, Mapping[str, int]]  # staff id: {kind: differences}


def record_audit(
    conn: Connection,
    *,
    finished_at: dt.datetime,
    window: tuple[dt.datetime, dt.datetime],
    staff: Sequence[int],
    found: Counts,
    left: Counts | None,
) -> None:
    """Keep an audit's counts (``left``: what a repair left, None without one), and drop
    all but the last ``KEEP``."""
    conn.execute(
        AUDIT_RUN.insert().values(
            finished_at=finished_at,
            window_start=window[0],
            window_end=window[1],
            staff=json.dumps(sorted(staff)),
            found=_dump(found),
            remaining=None if left is None else _dump(left),
        )
    )
    kept = select(AUDIT_RUN.c.id).order_by(AUDIT_RUN.c.id.desc()).limit(KEEP)
    conn.execute(AUDIT_RUN.delete().where(AUDIT_RUN.c.id.not_in(kept.scalar_subquery())))


def _dump(counts: Counts) -> str:
    return json.dumps({str(s): dict(k) for s, k in counts.items()}, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class AuditSummary:
    """An audit as one store sees it: its staff members only."""

    finished_at: dt.datetime
    window: tuple[dt.datetime, dt.datetime]
    staff: list[int]  # audited, of the stores asked for
    found: dict[int, dict[str, int]]
    left: dict[int, dict[str, int]] | None

    @property
    def total(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.found.values())

    @property
    def total_left(self) -> int | None:
        if self.left is None:
            return None
        return sum(sum(kinds.values()) for kinds in self.left.values())

    def by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kinds in self.found.values():
            for kind, n in kinds.items():
                counts[kind] = counts.get(kind, 0) + n
        return counts


def _load(text: str | None) -> dict[int, dict[str, int]]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {
        int(s): {str(k): int(n) for k, n in kinds.items() if isinstance(n, int)}
        for s, kinds in value.items()
        if s.isdigit() and isinstance(kinds, dict)
    }


def find_last_audit(
    conn: ReadConnection, merchant_ids: Sequence[int] | None
) -> AuditSummary | None:
    """The latest audit that covered a staff member of ``merchant_ids`` (None: any), its
    counts cut to those stores' staff members; None when there is none."""
    stores: set[int] | None = None if merchant_ids is None else set(merchant_ids)
    staff_store = {
        row[0]: row[1] for row in conn.execute("SELECT id, merchant_id FROM staff").fetchall()
    }
    rows = conn.execute(
        "SELECT finished_at, window_start, window_end, staff, found, remaining FROM audit_run "
        "ORDER BY id DESC LIMIT ?",
        (LOOK_BACK,),
    ).fetchall()
    for row in rows:
        try:
            audited = [int(s) for s in json.loads(row[3])]
        except (ValueError, TypeError):
            continue
        mine = [s for s in audited if stores is None or staff_store.get(s) in stores]
        if not mine:
            continue
        found, left = _load(row[4]), None if row[5] is None else _load(row[5])
        return AuditSummary(
            finished_at=stored_utc(row[0]),
            window=(stored_utc(row[1]), stored_utc(row[2])),
            staff=mine,
            found={s: k for s, k in found.items() if s in mine},
            left=None if left is None else {s: k for s, k in left.items() if s in mine},
        )
    return None
