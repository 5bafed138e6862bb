"""Inspection commands: ``calendar``, ``history``, ``booking``, ``clients search`` and
``stats`` here; ``status``, ``inbox`` and ``db check|backup|vacuum`` in ``cli.status``,
``cli.inbox`` and ``cli.db``. ``cli.main`` adds them all to the group.

They read the mirror's SQLite file directly and read-only (beside a running ``serve``,
with Booxi unreachable) and print a table or, with ``--json``, data for scripts. Client
data goes to stdout on purpose, never to logs. ``inbox replay`` is the one command that
writes (through the storage writer), ``db vacuum`` the one that rewrites the file.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from cli import inbox, inspection
from cli import output as out
from cli.options import json_output_option
from mirror.vocabulary import EVENT_TYPES
from storage import inspection as queries
from storage import reads
from storage.inspection import person_name
from storage.times import instant_key, utcnow

MAX_EVENTS = 100_000  # calendar events shown at once


def _services(booking: dict[str, Any], start: str | None = None) -> str:
    """The booking's service names; with ``start``, that of the item starting then."""
    items = [i for i in booking.get("items") or [] if isinstance(i, dict)]
    if start is not None:
        at = [i for i in items if (i.get("reservedClientTimespan") or {}).get("start") == start]
        items = at or items
    return ", ".join(str(i.get("serviceName", "")) for i in items)


def _client_name(booking: dict[str, Any]) -> str:
    client = booking.get("client")
    return person_name(client) if isinstance(client, dict) else ""


def _check_range(start: dt.datetime | None, end: dt.datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise click.BadParameter("must not be before --from", param_hint="--to")


_from_option = click.option(
    "--from",
    "start",
    type=out.INSTANT,
    help="From this instant: RFC 3339, or a date (00:00 UTC).",
)


@click.command()
@click.option("--staff", "staff_id", type=int, required=True, metavar="ID", help="Staff id.")
@_from_option
@click.option(
    "--to", "end", type=out.INSTANT, help="Up to this instant [default: --from + 7 days]."
)
@json_output_option
def calendar(
    staff_id: int, start: dt.datetime | None, end: dt.datetime | None, as_json: bool
) -> None:
    """Show a staff member's calendar from the mirror.

    Every calendar event overlapping the range (default: 7 days from today 00:00 UTC),
    with its booking (id, status, client, services), group event or time slot; times
    in UTC. --json gives the stored Booxi objects in the shape of Booxi's GET /calendar,
    plus the parts of the range the mirror does not cover.
    """
    from storage.coverage import read_coverage

    lo = start or utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    hi = end or lo + dt.timedelta(days=7)
    _check_range(lo, hi)
    with out.database() as (_config, conn):
        known = reads.staff_merchant(conn, staff_id) is not False
        includes = ("Appointment", "GroupEvent", "TimeSlot", "Staff")
        lo_key, hi_key = instant_key(lo), instant_key(hi)
        page = reads.calendar_page(
            conn, staff_id, lo_key, hi_key, EVENT_TYPES, includes, None, MAX_EVENTS
        )
        covered = read_coverage(conn, f"staff:{staff_id}", lo_key, hi_key)
    if not known and not page.events:
        raise click.ClickException(f"staff {staff_id} is not in the mirror")
    gaps = [(out.booxi_time(a), out.booxi_time(b)) for a, b in covered.gaps]
    if as_json:
        out.print_json(
            {
                "staffId": staff_id,
                "from": out.rfc3339(lo),
                "to": out.rfc3339(hi),
                "calendarEvents": [json.loads(r) for r in page.events],
                "bookings": [json.loads(r) for r in page.bookings],
                "groupEvents": [json.loads(r) for r in page.group_events],
                "timeSlots": [json.loads(r) for r in page.time_slots],
                "staff": json.loads(page.staff) if page.staff else None,
                "notCovered": [{"from": a, "to": b} for a, b in gaps],
            }
        )
        return
    staff_name = person_name(json.loads(page.staff)) if page.staff else ""
    bookings = {b["bookingId"]: b for b in map(json.loads, page.bookings)}
    groups = {g["id"]: g for g in map(json.loads, page.group_events)}
    slots = {s["id"]: s for s in map(json.loads, page.time_slots)}
    title = (
        f"Staff {staff_id} {staff_name}".rstrip()
        + f", {out.rfc3339(lo)} to {out.rfc3339(hi)}: {len(page.events)} event(s)"
    )
    table = out.table(
        "Start (UTC)", "End", "Type", "Booking", "Status", "Client", "Services", fixed=4
    )
    table.title = title
    for event in map(json.loads, page.events):
        start_text, end_text = out.minute(event.get("start")), out.minute(event.get("end"))
        if end_text[:10] == start_text[:10]:
            end_text = end_text[11:]
        kind = str(event.get("type", ""))
        if kind == "GroupEvent":
            group = groups.get(event.get("groupEventId"), {})
            attendees = f"{group.get('attendeeCount', '?')}/{group.get('attendeeCapacity', '?')}"
            cells = [f"group {event.get('groupEventId')}", "", f"{attendees} booked"]
            cells.append(str(group.get("serviceName", "")))
        elif kind == "TimeSlot":
            slot = slots.get(event.get("timeSlotId"), {})
            cells = [f"slot {event.get('timeSlotId')}", str(slot.get("type", "")), ""]
            cells.append(str(slot.get("description", "")))
        else:
            booking = bookings.get(event.get("bookingId"), {})
            cells = [str(event.get("bookingId") or "")]
            cells += [str(booking.get("status", "")), _client_name(booking)]
            cells.append(_services(booking, event.get("start")))
        table.add_row(start_text, end_text, kind, *cells)
    console = out.console()
    console.print(table)
    if gaps:
        spans = ", ".join(f"{a} to {b}" for a, b in gaps)
        console.print(f"Not covered by the mirror (never polled or filled): {spans}")


@click.command()
@click.option("--client", "client_id", type=int, metavar="ID", help="Booxi client id.")
@click.option(
    "--external-id",
    "external",
    type=out.EXTERNAL_ID,
    help="The client's id in another system, through its module link.",
)
@_from_option
@click.option("--to", "end", type=out.INSTANT, help="Up to this instant.")
@json_output_option
def history(
    client_id: int | None,
    external: tuple[str, str] | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    as_json: bool,
) -> None:
    """Show a client's bookings from the mirror.

    By start time (UTC). Give --client ID, or --external-id MODULE:ID to find the client
    through the module links the mirror holds. --json gives the stored Booxi bookings.
    """
    if (client_id is None) == (external is None):
        raise click.UsageError("give either --client ID or --external-id MODULE:ID")
    _check_range(start, end)
    with out.database() as (_config, conn):
        if client_id is not None:
            if not reads.client_known(conn, client_id):
                raise click.ClickException(f"client {client_id} is not in the mirror")
            client_ids = [client_id]
        elif external is not None:
            client_ids = queries.resolve_external_id(conn, *external)
            if not client_ids:
                raise click.ClickException(
                    f"no client linked to {external[0]}:{external[1]} in the mirror"
                )
        raws = queries.list_client_bookings(
            conn,
            client_ids,
            instant_key(start) if start else None,
            instant_key(end) if end else None,
        )
    found = [json.loads(raw) for raw in raws]
    if as_json:
        out.print_json({"clientIds": client_ids, "bookings": found})
        return
    ids = ", ".join(map(str, client_ids))
    table = out.table("Booking", "Start (UTC)", "Store", "Staff", "Status", "Services", fixed=3)
    table.title = f"Client {ids}: {len(found)} booking(s)"
    for booking in found:
        staff = person_name(
            {"firstName": booking.get("staffFirstName"), "lastName": booking.get("staffLastName")}
        )
        table.add_row(
            str(booking.get("bookingId", "")),
            out.minute(booking.get("startsOn")),
            str(booking.get("merchantId", "")),
            f"{booking.get('staffId') or ''} {staff}".strip(),
            str(booking.get("status", "")),
            _services(booking),
        )
    out.console().print(table)


@click.command()
@click.argument("booking_id", metavar="ID")
@json_output_option
def booking(booking_id: str, as_json: bool) -> None:
    """Show one stored booking: its JSON and where it came from.

    Its provenance (the path that last wrote it: poll, webhook, write or fill; when;
    Booxi's modifiedOn), its calendar events and the webhook events that carried it.
    """
    with out.database() as (_config, conn):
        stored = queries.get_booking(conn, booking_id)
    data = json.loads(stored.raw)
    if as_json:
        out.print_json(
            {
                "booking": data,
                "provenance": {
                    "source": stored.source,
                    "syncedAt": out.rfc3339(stored.synced_at),
                    "modifiedOn": out.booxi_time(stored.modified_on),
                },
                "calendarEvents": [json.loads(raw) for raw, *_ in stored.events],
                "webhookEvents": [inbox.inbox_json(row) for row in stored.inbox],
            }
        )
        return
    console = out.console()
    console.print(f"Booking {booking_id}")
    console.print(f"  source       {stored.source}")
    console.print(f"  synced at    {out.rfc3339(stored.synced_at)}")
    console.print(f"  modifiedOn   {out.booxi_time(stored.modified_on)}")
    console.print(json.dumps(data, indent=2, ensure_ascii=False), soft_wrap=True)
    events = out.table("Event", "Start (UTC)", "End (UTC)", "Staff", "Source", "Synced at", fixed=6)
    events.title = f"Calendar events: {len(stored.events)}"
    for raw, source, synced_at, provisional in stored.events:
        event = json.loads(raw)
        events.add_row(
            f"{event.get('id')}{' (provisional)' if provisional else ''}",
            out.minute(event.get("start")),
            out.minute(event.get("end")),
            str(event.get("staffId", "")),
            source,
            out.rfc3339(synced_at) or "",
        )
    console.print(events)
    if stored.inbox:
        console.print(inbox.inbox_table(stored.inbox, title="Webhook events"))


@click.group("clients")
def clients_group() -> None:
    """Look up the clients the mirror holds."""


@clients_group.command("search")
@click.option("--name", metavar='"FIRST LAST"', help="First and last name, or one of them.")
@click.option("--email", metavar="E", help="E-mail address.")
@click.option("--phone", metavar="P", help="Phone number (home or mobile; digits compared).")
@click.option("--external-id", "external", type=out.EXTERNAL_ID, help="Id in another system.")
@click.option("--merchant", "merchant_id", type=int, metavar="ID", help="Only this store.")
@click.option(
    "--limit",
    metavar="N",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="At most N clients.",
)
@json_output_option
def clients_search(
    name: str | None,
    email: str | None,
    phone: str | None,
    external: tuple[str, str] | None,
    merchant_id: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """Find clients matching every criterion given (case-insensitive).

    --json gives the stored Booxi client objects, with their module links.
    """
    if not any(v is not None for v in (name, email, phone, external, merchant_id)):
        raise click.UsageError(
            "give at least one of --name, --email, --phone, --external-id, --merchant"
        )
    query = queries.ClientQuery(name, email, phone, external, merchant_id)
    with out.database() as (_config, conn):
        matches = queries.search_clients(conn, query, limit)
    if as_json:
        out.print_json(
            [
                {
                    "client": json.loads(m.raw),
                    "clientLinks": [{"moduleId": a, "externalId": b} for a, b in m.links],
                    "source": m.source,
                    "syncedAt": out.rfc3339(m.synced_at),
                }
                for m in matches
            ]
        )
        return
    table = out.table("Client", "Store", "Name", "E-mail", "Phone", "External ids", fixed=2)
    table.title = f"{len(matches)} client(s)" + (
        " (limit reached)" if len(matches) == limit else ""
    )
    for match in matches:
        client = json.loads(match.raw)
        phone_text = client.get("mobilePhoneNumber") or client.get("homePhoneNumber") or ""
        table.add_row(
            str(client.get("id", "")),
            str(match.merchant_id if match.merchant_id is not None else ""),
            person_name(client),
            str(client.get("email") or ""),
            str(phone_text),
            ", ".join(f"{a}:{b}" for a, b in match.links),
        )
    out.console().print(table)


@click.command()
@json_output_option
def stats(as_json: bool) -> None:
    """Show row counts, sizes and personal data held.

    Rows per table, the file and -wal sizes (on PostgreSQL: the database's size), the
    inbox's size and the range of booking starts.

    Rows with personal data: client rows with a name, e-mail or phone; bookings whose
    client block has one; inbox events whose body carries a client (alone or in a
    booking) that has one. Data stripped by retention or erasure does not count.
    """
    with out.database() as (config, conn):
        found = queries.read_stats(conn)
    path = inspection.database_file(config)
    size, wal = (found.database_bytes or 0, None) if path is None else inspection.file_sizes(path)
    if as_json:
        out.print_json(
            {
                "tables": found.tables,
                "fileBytes": size,
                "walBytes": wal,
                "freeBytes": found.free_bytes,
                "inbox": {"events": found.inbox_events, "bodyBytes": found.inbox_body_bytes},
                "bookings": {
                    "oldestStart": out.booxi_time(found.oldest_booking),
                    "newestStart": out.booxi_time(found.newest_booking),
                },
                "piiRows": found.pii,
            }
        )
        return
    console = out.console()
    if wal is None or found.free_bytes is None:
        console.print(f"Database: {out.size(size)}")
    else:
        console.print(
            f"Database: {out.size(size)} (-wal {out.size(wal)}, "
            f"{out.size(found.free_bytes)} free to vacuum)"
        )
    console.print(
        f"Inbox: {found.inbox_events} event(s), {out.size(found.inbox_body_bytes)} of bodies"
    )
    console.print(
        f"Bookings start from {out.booxi_time(found.oldest_booking) or '-'} "
        f"to {out.booxi_time(found.newest_booking) or '-'}"
    )
    table = out.table("Table", ">Rows", ">With personal data")
    for name, count in found.tables.items():
        pii = found.pii.get(name)
        table.add_row(name, str(count), "" if pii is None else str(pii))
    console.print(table)
