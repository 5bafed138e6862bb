"""Retention and erasure of clients' personal data (synchronous, run by the writer).

- ``erase_client``: a client deleted or anonymized (through the mirror or upstream):
  blocked for good, stripped from bookings, clients, the inbox and kept write results,
  and (when deleted) removed with their module links.
- ``apply_retention``: clients with no future live booking whose latest booking ended
  ``days`` or more ago (cancelled bookings do not count; a client whose bookings were
  all cancelled counts from the latest cancellation; one without bookings from when the
  mirror last saw them) are blocked and
  stripped the same way; a retention block is lifted when the client books again, so
  what they share for the new booking is kept until it too is past retention.
- ``block_booking``: a booking made without retention (and its client) is blocked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage import pii, reference
from storage.times import instant_key, stored_utc


def erase_client(
    conn: Connection, client_id: int, now: dt.datetime, *, delete: bool = True
) -> dict[str, int]:
    pii.block(conn, "client", [client_id], "erasure", now)
    counts = pii.strip_clients_everywhere(conn, {client_id})
    if delete:
        reference.delete_client(conn, client_id)
    return counts


def block_booking(
    conn: Connection, booking_id: str, client_id: int | None, now: dt.datetime
) -> dict[str, int]:
    """No retention for this booking and its client; strips what already arrived."""
    pii.block(conn, "booking", [booking_id], "no_retention", now)
    if client_id is None:
        return {}
    pii.block(conn, "client", [client_id], "no_retention", now)
    return pii.strip_clients_everywhere(conn, {client_id})


@dataclasses.dataclass
class RetentionOutcome:
    anonymized: list[int]
    lifted: list[int]
    counts: dict[str, int]


def clients_past_retention(
    conn: Connection, days: int, now: dt.datetime
) -> tuple[set[int], set[int]]:
    """(clients past retention, clients with a future live booking)."""
    now_key = instant_key(now)
    cutoff = instant_key(now - dt.timedelta(days=days))
    future = {
        row[0]
        for row in conn.execute(
            text(
                "SELECT DISTINCT client_id FROM booking WHERE client_id IS NOT NULL "
                "AND status != 'Cancelled' AND ends_on > :now"
            ),
            {"now": now_key},
        )
    }
    # the latest booking that took place; for clients whose bookings were all cancelled,
    # the latest cancellation
    latest: dict[int, str] = dict(
        conn.execute(
            text(
                "SELECT client_id, coalesce(max(CASE WHEN status != 'Cancelled' THEN ends_on END),"
                " max(modified_on)) FROM booking WHERE client_id IS NOT NULL GROUP BY client_id"
            )
        ).all()
    )
    past = {cid for cid, last in latest.items() if last <= cutoff and cid not in future}
    cutoff_at = now - dt.timedelta(days=days)
    for client_id, synced_at in conn.execute(text("SELECT id, synced_at FROM client")).all():
        if client_id in latest or client_id in future:
            continue
        if stored_utc(synced_at) <= cutoff_at:
            past.add(client_id)
    return past, future


def apply_retention(conn: Connection, days: int, now: dt.datetime) -> RetentionOutcome:
    past, future = clients_past_retention(conn, days, now)
    retained_blocks = {
        int(i)
        for i in conn.execute(
            text("SELECT ident FROM pii_block WHERE kind = 'client' AND reason = 'retention'")
        ).scalars()
    }
    lifted = sorted(retained_blocks & future)
    pii.unblock(conn, "client", lifted, "retention")
    already = {int(i) for i in pii.blocked(conn, "client", past)}
    newly = past - already
    pii.block(conn, "client", newly, "retention", now)
    counts = pii.strip_clients_everywhere(conn, newly | (past & already))
    return RetentionOutcome(sorted(newly), lifted, counts)


def retention_report(conn: Connection, now: dt.datetime) -> list[dict[str, object]]:
    """One row per client the mirror may hold personal data of (a client row with any,
    or bookings of a client not blocked): their store, latest booking end, future
    bookings."""
    now_key = instant_key(now)
    rows = conn.execute(
        text(
            "WITH held AS ("
            " SELECT id AS client_id FROM client WHERE email != '' OR last_name != '' "
            "  OR first_name != '' OR phone_home != '' OR phone_mobile != '' "
            " UNION SELECT DISTINCT client_id FROM booking WHERE client_id IS NOT NULL "
            "  AND CAST(client_id AS TEXT) NOT IN "
            "   (SELECT ident FROM pii_block WHERE kind = 'client')) "
            "SELECT h.client_id, "
            " (SELECT merchant_id FROM client c WHERE c.id = h.client_id), "
            " (SELECT max(merchant_id) FROM booking b WHERE b.client_id = h.client_id), "
            " (SELECT max(ends_on) FROM booking b WHERE b.client_id = h.client_id "
            "  AND b.status != 'Cancelled'), "
            " (SELECT count(*) FROM booking b WHERE b.client_id = h.client_id "
            "  AND b.status != 'Cancelled' AND b.ends_on > :now) "
            "FROM held h ORDER BY h.client_id"
        ),
        {"now": now_key},
    ).all()
    return [
        {
            "clientId": client_id,
            "merchantId": client_store or booking_store,
            "lastBookingEnd": last_end,
            "futureBookings": future,
        }
        for client_id, client_store, booking_store, last_end, future in rows
    ]
