"""First-demand fills: what the read API fetches from Booxi when the mirror does not
cover a request yet, stores (``source = fill``), and then serves from storage.

Each raises ``BooxiError`` when Booxi cannot answer (the API says 503 then, rather than
present a partial answer as complete), ``BooxiNotFound`` for what Booxi does not know.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from sqlalchemy.engine import Connection

from mirror import answers
from mirror.booxi_errors import BooxiError, BooxiNotFound
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


Keep = Callable[[int | None], bool]  # whether a store's objects may be stored (key scope)
HISTORY_CHUNK = dt.timedelta(days=365)


def _keep_all(merchant_id: int | None) -> bool:
    return True


def history_span(
    now: dt.datetime, *, history_days: int, retention_days: int | None, horizon_days: int
) -> tuple[dt.datetime, dt.datetime]:
    """The range a client's history is first fetched over.

    **choice**: from ``history_days`` back (or the retention period, when one is set and
    shorter: the mirror would strip older data at once) to a year ahead or the poll
    horizon, whichever is further. Booxi's guide asks for a ``from``/``to`` range and its
    longest is unknown, so the range is asked in chunks of 365 days.
    """
    days_back = history_days if retention_days is None else min(history_days, retention_days)
    ahead = max(365, horizon_days)
    return now - dt.timedelta(days=days_back), now + dt.timedelta(days=ahead)


def chunks(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """``[start, end]`` cut into spans of at most ``HISTORY_CHUNK``, in order."""
    spans = []
    while start < end:
        stop = min(end, start + HISTORY_CHUNK)
        spans.append((start, stop))
        start = stop
    return spans


async def fill_client_history(
    client: BooxiClient,
    writer: Writer,
    client_id: int,
    start: dt.datetime,
    end: dt.datetime,
    *,
    scope: str,
    covers: tuple[str, str],
    merchant_ids: Sequence[int] | None = None,
) -> None:
    """A client's bookings with ``startsOn`` in ``[start, end]``, as Booxi lists them
    (``GET /booking`` with ``clientId``, ``from`` and ``to``, in chunks), stored; then
    ``scope`` is recorded as covering ``covers``. With ``merchant_ids`` (a store-bound
    key), only those stores' bookings are asked for and stored."""
    pages: list[Json] = []
    for lo, hi in chunks(start, end):
        for merchant_id in merchant_ids if merchant_ids is not None else [None]:
            pages += [
                page
                async for page in client.iter_booking_history(
                    client_id, start=lo, end=hi, merchant_id=merchant_id, priority=Priority.FILL
                )
            ]
    keep = _keep_all if merchant_ids is None else (lambda m: m in merchant_ids)
    found = [b for p in pages for b in answers.items(p, "bookings") if keep(b.get("merchantId"))]

    def save(conn: Connection) -> None:
        now = utcnow()
        rows = [booking_row(b, "fill", now) for b in found]
        written = bookings.upsert_bookings(conn, rows, strictly_newer=False)
        known = bookings.with_calendar_events(conn, written)
        bookings.replace_derived_events(
            conn, [b for b in found if b["bookingId"] in known], source="fill", now=now
        )
        bookings.upsert_group_events(
            conn,
            [
                group_event_row(g, "fill", now)
                for p in pages
                for g in answers.items(p, "groupEvents")
            ],
        )
        _reference(conn, pages, now, keep)
        coverage.record_fill(conn, scope, *covers, now)

    await writer.run(save)
    log.info("fill.client_history", extra={"client_id": client_id, "pages": len(pages)})


async def fill_client(
    client: BooxiClient, writer: Writer, client_id: int, keep: Keep = _keep_all
) -> None:
    """One client and its module links; ``BooxiNotFound`` when Booxi has none, or when
    the client belongs to a store ``keep`` refuses (then nothing is stored)."""
    found, links = answers.client_of(await client.get_client(client_id))
    if found is None:
        raise BooxiError(f"Booxi answered GET /client/{client_id} without a client")
    if not keep(found.get("merchantId")):
        raise BooxiNotFound(f"client {client_id} is not at this key's stores")

    def save(conn: Connection) -> None:
        now = utcnow()
        reference.upsert_clients(conn, [client_row(found, "fill", now)])
        reference.upsert_links(conn, [client_link_row(link, "fill", now) for link in links])

    await writer.run(save)


async def fill_client_search(
    client: BooxiClient,
    writer: Writer,
    criteria: dict[str, str],
    merchant_id: int | None,
    *,
    scope: str,
    keep: Keep = _keep_all,
) -> None:
    """Booxi's answer to a client search, stored (the clients ``keep`` accepts), and the
    search recorded as answered (``scope``), so the mirror knows it holds every match."""
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
    found = [c for c in answers.items(answer, "clients") if keep(c.get("merchantId"))]
    ids = {c.get("id") for c in found}
    links = [link for link in answers.items(answer, "clientLinks") if link.get("clientId") in ids]

    def save(conn: Connection) -> None:
        now = utcnow()
        reference.upsert_clients(conn, [client_row(c, "fill", now) for c in found])
        reference.upsert_links(conn, [client_link_row(link, "fill", now) for link in links])
        coverage.record_fill(conn, scope, *coverage.WHOLE, now)

    await writer.run(save)


async def fill_staff(
    client: BooxiClient, writer: Writer, staff_id: int, keep: Keep = _keep_all
) -> None:
    """One staff member (``GET /staff/{id}``), stored if ``keep`` accepts their store;
    ``BooxiNotFound`` otherwise."""
    answer = await client.get_staff(staff_id, priority=Priority.FILL)
    wrapped = answer.get("staff")
    staff: Json = wrapped if isinstance(wrapped, dict) else answer
    if not isinstance(staff.get("id"), int) or not keep(staff.get("merchantId")):
        raise BooxiNotFound(f"staff {staff_id} is not at this key's stores")

    def save(conn: Connection) -> None:
        reference.upsert_staff(conn, [staff_row(staff, "fill", utcnow())])

    await writer.run(save)


def _reference(conn: Connection, pages: list[Json], now: dt.datetime, keep: Keep) -> None:
    for page in pages:
        reference.upsert_services(
            conn,
            [
                service_row(s, "fill", now)
                for s in answers.items(page, "services")
                if keep(s.get("merchantId"))
            ],
        )
        reference.upsert_staff(
            conn,
            [
                staff_row(s, "fill", now)
                for s in answers.objects(page, "staff")
                if keep(s.get("merchantId"))
            ],
        )
        reference.upsert_merchants(
            conn,
            [
                merchant_row(m, "fill", now)
                for m in answers.items(page, "merchants")
                if keep(m.get("id"))
            ],
        )


async def fill_booking(
    client: BooxiClient, writer: Writer, booking_id: str, keep: Keep = _keep_all
) -> None:
    """One booking (and its group events); ``BooxiNotFound`` if Booxi has none, or if it
    is at a store ``keep`` refuses (then nothing is stored)."""
    answer = await client.get_booking(booking_id, priority=Priority.FILL)
    booking, group_events = answers.booking_of(answer)
    if booking is None:
        raise BooxiNotFound(f"Booxi answered no booking for {booking_id}")
    if not keep(booking.get("merchantId")):
        raise BooxiNotFound(f"booking {booking_id} is not at this key's stores")

    def save(conn: Connection) -> None:
        now = utcnow()
        written = bookings.upsert_bookings(
            conn, [booking_row(booking, "fill", now)], strictly_newer=False
        )
        if written:
            bookings.replace_derived_events(conn, [booking], source="fill", now=now)
        bookings.upsert_group_events(conn, [group_event_row(g, "fill", now) for g in group_events])

    await writer.run(save)
