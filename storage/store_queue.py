"""A store's dispatch queue: the appointment requests that need a manager.

A booking is in the queue when it is an ``Appointment`` of the store, not
``Cancelled``, and either no staff member has taken it (``staff_id`` NULL: Booxi's
``staffId`` null, absent or 0, see ``storage.rows.staff_of``) or its status is
``PendingStaffApproval`` or ``PendingClientApproval``. Its requested time is
``startsOn`` (``starts_on``), the range filters that; the queue is ordered oldest
request first: by Booxi's ``createdOn`` (``modifiedOn`` when a booking has none), then
``bookingId``. The queue is short (the requests of one store), so it is read whole for
the range and sorted here; pages are cut from that order (``after``: the last item's
sort key).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select, text
from sqlalchemy.engine import Connection

from storage.bookings import BOOKING
from storage.models import QUEUE_METHOD as METHOD
from storage.models import QUEUE_PENDING as PENDING
from storage.models import QUEUED
from storage.read_connection import ReadConnection
from storage.reads import Raw, _by_id, _services_of
from storage.times import instant_key

SCOPE_PREFIX = "queue:"

# the partial index's terms, literally (``storage.models.QUEUED``), then the range
_WHERE = QUEUED + " AND starts_on >= ? AND starts_on <= ?"
# every store's queue size over a range (``/metrics``): read from the partial index alone
SIZES_SQL = "SELECT merchant_id, COUNT(*) FROM booking WHERE " + _WHERE + " GROUP BY merchant_id"


def queue_scope(merchant_id: int) -> str:
    """The sync state of a store's queue poll (``mirror.store_queue``)."""
    return f"{SCOPE_PREFIX}{merchant_id}"


@dataclasses.dataclass
class QueuePage:
    bookings: list[Raw]
    services: list[Raw]
    staff: list[Raw]
    merchants: list[Raw]
    last: tuple[str, str] | None  # sort key of the last item, when more follow
    total: int  # items in the range, every page


def sort_key(raw: Raw, modified_on: str) -> str:
    """When the request was made (``createdOn``), as a stored instant key."""
    try:
        created = json.loads(raw).get("createdOn")
        return instant_key(created) if isinstance(created, str) else modified_on
    except (ValueError, AttributeError):
        return modified_on


def queue_page(
    conn: ReadConnection,
    merchant_id: int,
    start: str,
    end: str,
    after: tuple[str, str] | None,
    size: int | None,
) -> QueuePage:
    """The queue's items with ``starts_on`` in ``[start, end]`` after ``after``; at most
    ``size`` of them (None: all)."""
    rows = conn.execute(
        "SELECT booking_id, staff_id, modified_on, raw FROM booking WHERE merchant_id = ? AND "
        + _WHERE,
        [merchant_id, start, end],
    ).fetchall()
    ordered = sorted((sort_key(r[3], r[2]), r[0], r[1], r[3]) for r in rows)
    total = len(ordered)
    if after is not None:
        ordered = [item for item in ordered if (item[0], item[1]) > after]
    more = size is not None and len(ordered) > size
    if size is not None:
        ordered = ordered[:size]
    bookings = [item[3] for item in ordered]
    staff_ids = [item[2] for item in ordered if item[2] is not None]
    staff = _by_id(conn, "SELECT id, raw FROM staff WHERE id IN ({marks})", staff_ids)
    merchant = _by_id(conn, "SELECT id, raw FROM merchant WHERE id IN ({marks})", [merchant_id])
    return QueuePage(
        bookings=bookings,
        services=_services_of(conn, bookings, []),
        staff=[staff[i] for i in dict.fromkeys(staff_ids) if i in staff],
        merchants=list(merchant.values()),
        last=(ordered[-1][0], ordered[-1][1]) if more and ordered else None,
        total=total,
    )


def queue_sizes(conn: ReadConnection, start: str, end: str) -> dict[int, int]:
    """How many requests each store's queue holds with ``starts_on`` in ``[start, end]``:
    every store the mirror holds (0 for an empty queue), and any other with requests."""
    sizes = {int(r[0]): 0 for r in conn.execute("SELECT id FROM merchant").fetchall()}
    rows = conn.execute(SIZES_SQL, [start, end]).fetchall()
    sizes.update({int(r[0]): int(r[1]) for r in rows})
    return sizes


def queued_not_returned(
    conn: Connection,
    merchant_id: int,
    start: str,
    end: str,
    returned: set[str],
    synced_before: Any,
) -> list[str]:
    """Requests the mirror holds in a store's queue over ``[start, end]`` that a poll of
    the store's bookings no longer returned (and no one wrote since it began): each is
    looked up again (``mirror.store_queue``)."""
    result = conn.execute(
        select(BOOKING.c.booking_id).where(
            BOOKING.c.merchant_id == merchant_id,
            text(QUEUED),
            and_(BOOKING.c.starts_on >= start, BOOKING.c.starts_on <= end),
            BOOKING.c.synced_at < synced_before,
        )
    )
    return [booking_id for booking_id in result.scalars() if booking_id not in returned]


def queued_ids(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Those of booking rows (``storage.rows.booking_row``) that belong in a queue."""
    return [
        r["booking_id"]
        for r in rows
        if r["method"] == METHOD
        and r["status"] != "Cancelled"
        and (r["staff_id"] is None or r["status"] in PENDING)
    ]
