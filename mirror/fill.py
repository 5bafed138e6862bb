"""First-demand fills: what the read API fetches from Booxi when the mirror does not
cover a request yet, stores (``source = fill``), and then serves from storage.

Each raises ``BooxiError`` when Booxi cannot answer (the API says 503 then, rather than
present a partial answer as complete), ``BooxiNotFound`` for what Booxi does not know.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy.engine import Connection

from mirror.booxi_errors import BooxiNotFound
from mirror.budget import Priority
from mirror.client import BooxiClient
from mirror.poller import BOOXI_PAST_LIMIT, PAST_MARGIN, Window, poll_staff_calendar
from storage import bookings, coverage, reference
from storage.rows import (
    Json,
    booking_row,
    client_link_row,
    client_row,
    group_event_row,
    merchant_row,
    service_row,
    staff_row,
)
from storage.times import parse_instant, utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)


def earliest_fillable(now: dt.datetime) -> dt.datetime:
    """Booxi's calendar answers from 7 days back (with a minute of margin for clocks)."""
    return now - BOOXI_PAST_LIMIT + PAST_MARGIN


async def fill_calendar(
    client: BooxiClient, writer: Writer, staff_id: int, gaps: Sequence[tuple[str, str]]
) -> bool:
    """Fetch the parts of ``gaps`` Booxi serves; False when some part is too old to fetch."""
    earliest = earliest_fillable(utcnow())
    complete = True
    for start_key, end_key in gaps:
        start, end = parse_instant(start_key), parse_instant(end_key)
        if start < earliest:
            complete = False
            start = earliest
        if end <= start:
            continue
        await poll_staff_calendar(client, writer, staff_id, Window(start, end), source="fill")
    log.info("fill.calendar", extra={"staff_id": staff_id, "gaps": len(gaps)})
    return complete


async def fill_client_history(client: BooxiClient, writer: Writer, client_id: int) -> None:
    """A client's whole booking history, as Booxi lists it."""
    pages = [page async for page in client.iter_booking_history(client_id, priority=Priority.FILL)]

    def save(conn: Connection) -> None:
        now = utcnow()
        rows = [booking_row(b, "fill", now) for p in pages for b in p.get("bookings") or []]
        written = bookings.upsert_bookings(conn, rows, strictly_newer=False)
        known = bookings.with_calendar_events(conn, written)
        bookings.replace_derived_events(
            conn,
            [b for p in pages for b in p.get("bookings") or [] if b["bookingId"] in known],
            source="fill",
            now=now,
        )
        bookings.upsert_group_events(
            conn,
            [group_event_row(g, "fill", now) for p in pages for g in p.get("groupEvents") or []],
        )
        _reference(conn, pages, now)
        coverage.record_fill(conn, coverage.client_scope(client_id), *coverage.WHOLE, now)

    await writer.run(save)
    log.info("fill.client_history", extra={"client_id": client_id, "pages": len(pages)})


async def fill_client(client: BooxiClient, writer: Writer, client_id: int) -> None:
    """One client and its module links."""
    answer = await client.get_client(client_id)
    found = answer.get("client") if isinstance(answer, dict) else None
    links = answer.get("clientLinks") if isinstance(answer, dict) else None

    def save(conn: Connection) -> None:
        now = utcnow()
        if isinstance(found, dict):
            reference.upsert_clients(conn, [client_row(found, "fill", now)])
        if isinstance(links, list):
            reference.upsert_links(conn, [client_link_row(link, "fill", now) for link in links])

    await writer.run(save)


async def fill_client_search(
    client: BooxiClient, writer: Writer, criteria: dict[str, str], merchant_id: int | None
) -> None:
    """Booxi's answer to a client search the mirror had no match for."""
    answer = await client.search_clients(
        merchant_id=merchant_id,
        module_id=criteria.get("moduleId"),
        external_id=criteria.get("externalId"),
        first_name=criteria.get("firstName"),
        last_name=criteria.get("lastName"),
        email=criteria.get("email"),
        phone_number=criteria.get("phoneNumber"),
        priority=Priority.FILL,
    )

    def save(conn: Connection) -> None:
        now = utcnow()
        reference.upsert_clients(
            conn, [client_row(c, "fill", now) for c in answer.get("clients") or []]
        )
        reference.upsert_links(
            conn, [client_link_row(link, "fill", now) for link in answer.get("clientLinks") or []]
        )

    await writer.run(save)


def _reference(conn: Connection, pages: list[Json], now: dt.datetime) -> None:
    for page in pages:
        reference.upsert_services(
            conn, [service_row(s, "fill", now) for s in page.get("services") or []]
        )
        staff = page.get("staff")
        staff_list = (
            staff if isinstance(staff, list) else [staff] if isinstance(staff, dict) else []
        )
        reference.upsert_staff(conn, [staff_row(s, "fill", now) for s in staff_list])
        reference.upsert_merchants(
            conn, [merchant_row(m, "fill", now) for m in page.get("merchants") or []]
        )


async def fill_booking(client: BooxiClient, writer: Writer, booking_id: str) -> None:
    """One booking (and its group event); ``BooxiNotFound`` if Booxi has none."""
    answer = await client.get_booking(booking_id, priority=Priority.FILL)
    booking = answer.get("booking") if isinstance(answer, dict) else None
    if not isinstance(booking, dict):
        raise BooxiNotFound(f"Booxi answered no booking for {booking_id}")

    def save(conn: Connection) -> None:
        now = utcnow()
        written = bookings.upsert_bookings(
            conn, [booking_row(booking, "fill", now)], strictly_newer=False
        )
        if written:
            bookings.replace_derived_events(conn, [booking], source="fill", now=now)
        bookings.upsert_group_events(
            conn, [group_event_row(g, "fill", now) for g in answer.get("groupEvents") or []]
        )

    await writer.run(save)
