"""Generate a mirror database the size of a large chain, straight into storage (no Booxi).

Stores are built one at a time by the simulator's generator (``simulator.generate.
build_store``: the same Booxi-shaped objects the simulator serves), turned into rows by
the same functions the poller and the history fill use (``storage.rows``), and written
through the storage layer's upserts, with the bookkeeping a completed poll leaves:

- each staff member's calendar covered over the poll window (7 days back to
  ``--horizon-days`` ahead) and synced now;
- each client's history covered whole (as after a first-demand fill), so history reads
  are answered by the mirror alone;
- the reference data synced now.

The change log the triggers wrote meanwhile is emptied at the end (a fresh mirror has
nothing to invalidate), and an SQLite file is vacuumed. Defaults: 1,000,000 bookings
over 10,000 staff in 200 stores, 100,000 clients; about 100 bookings per staff member,
laid out from 6 days ago.

    .venv/bin/python -m bench.generate_db --url sqlite+aiosqlite:///big.db
    .venv/bin/python -m bench.generate_db --url postgresql+asyncpg://host/db --bookings 10000

The URL's database must be empty (it is migrated first); ``bench.read_calendar
--database URL`` then measures reads against it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import math
import random
import sqlite3
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from simulator.generate import build_store
from simulator.settings import SimSettings
from simulator.world import World
from storage import bookings, coverage, reference, sync_state
from storage.engine import make_engine
from storage.migrate import upgrade
from storage.rows import (
    booking_row,
    calendar_event_row,
    client_link_row,
    client_row,
    group_event_row,
    merchant_row,
    service_category_row,
    service_row,
    staff_row,
    time_slot_row,
)
from storage.times import instant_key, utcnow

TYPES = {"Appointment", "GroupEvent", "TimeSlot"}
REFERENCE_SCOPE = "reference"
DAYS_BEFORE = 6  # inside Booxi's 7-day calendar limit, so every event is in a poll window
# What the simulator's schedule lays out: bookings per staff member and open day,
# measured (about 5: Sundays closed, time slots and group events between).
BOOKINGS_PER_STAFF_DAY = 5.0


@dataclasses.dataclass
class Totals:
    bookings: int = 0
    events: int = 0
    clients: int = 0
    staff: int = 0


def _save(
    conn: Connection, world: World, merchant: dict[str, Any], horizon_days: int, totals: Totals
) -> None:
    now = utcnow()
    start, end = (
        now - dt.timedelta(days=7) + dt.timedelta(minutes=5),
        now + dt.timedelta(days=horizon_days),
    )
    reference.upsert_merchants(conn, [merchant_row(merchant, "poll", now)])
    members = [s for s in world.staff.values() if s["merchantId"] == merchant["id"]]
    reference.upsert_staff(conn, [staff_row(s, "poll", now) for s in members])
    reference.upsert_services(conn, [service_row(s, "poll", now) for s in world.services.values()])
    reference.upsert_service_categories(
        conn, [service_category_row(c, "poll", now) for c in world.categories.values()]
    )
    reference.upsert_clients(conn, [client_row(c, "fill", now) for c in world.clients.values()])
    reference.upsert_links(
        conn, [client_link_row(link, "fill", now) for link in world.links.values()]
    )
    rows = [booking_row(b, "poll", now) for b in world.bookings.values()]
    bookings.upsert_bookings(conn, rows, strictly_newer=False)
    bookings.upsert_group_events(
        conn, [group_event_row(g, "poll", now) for g in world.group_events.values()]
    )
    bookings.upsert_time_slots(
        conn, [time_slot_row(s, "poll", now) for s in world.time_slots.values()]
    )
    start_key, end_key = instant_key(start), instant_key(end)
    events = 0
    for member in members:
        found = world.calendar_events(member["id"], start, end, TYPES)
        bookings.upsert_calendar_events(conn, [calendar_event_row(e, "poll", now) for e in found])
        events += len(found)
        scope = sync_state.staff_scope(member["id"])
        coverage.record_poll(conn, scope, start_key, end_key, now)
        sync_state.record_success(
            conn,
            scope,
            kind="staff",
            attempted_at=now,
            window=(start, end),
            merchant_id=merchant["id"],
            staff_id=member["id"],
        )
    for client_id in world.clients:
        coverage.record_fill(conn, coverage.client_scope(client_id), *coverage.WHOLE, now)
    totals.bookings += len(rows)
    totals.events += events
    totals.clients += len(world.clients)
    totals.staff += len(members)


async def generate(
    url: str, *, bookings_wanted: int, stores: int, staff: int, clients: int, horizon_days: int
) -> Totals:
    per_staff = bookings_wanted / staff
    open_days = per_staff / BOOKINGS_PER_STAFF_DAY
    days_after = max(1, math.ceil(open_days * 7 / 6) - DAYS_BEFORE - 1)
    settings = SimSettings(
        partner_key="generate-db-partner-key",
        merchant_key="generate-db-merchant-key",
        stores=stores,
        staff_per_store=max(1, staff // stores),
        days_before=DAYS_BEFORE,
        days_after=days_after,
    )
    engine = make_engine(url)
    await upgrade(engine)
    rng = random.Random(settings.seed)
    staff_so_far: dict[int, Any] = {}
    world = World()
    totals = Totals()
    began = time.perf_counter()
    try:
        for index in range(stores):
            # a world per store, carrying the staff and the id counters over: ids stay
            # unique and memory holds one store's bookings at a time
            world = World(staff=staff_so_far, counters=world.counters)
            merchant = build_store(rng, world, settings, index, max(1, clients // stores))
            async with engine.begin() as conn:
                await conn.run_sync(_save, world, merchant, horizon_days, totals)
            elapsed = time.perf_counter() - began
            print(
                f"\rstore {index + 1}/{stores}: {totals.bookings:,} bookings, "
                f"{totals.events:,} events, {totals.bookings / elapsed:,.0f} bookings/s",
                end="",
                flush=True,
            )
        print()
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda c: sync_state.record_success(
                    c, REFERENCE_SCOPE, kind="reference", attempted_at=utcnow()
                )
            )
            await conn.execute(text("DELETE FROM change_log"))
    finally:
        await engine.dispose()
    if engine.dialect.name == "sqlite" and engine.url.database:
        with sqlite3.connect(engine.url.database) as file:  # outside any transaction
            file.execute("VACUUM")
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="an empty database's SQLAlchemy URL")
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--staff", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--horizon-days", type=int, default=90)
    args = parser.parse_args()
    began = time.perf_counter()
    totals = asyncio.run(
        generate(
            args.url,
            bookings_wanted=args.bookings,
            stores=args.stores,
            staff=args.staff,
            clients=args.clients,
            horizon_days=args.horizon_days,
        )
    )
    print(
        f"{totals.bookings:,} bookings, {totals.events:,} calendar events, {totals.staff:,} "
        f"staff, {totals.clients:,} clients in {time.perf_counter() - began:.0f} s"
    )


if __name__ == "__main__":
    main()
