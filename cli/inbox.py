"""``booxi-mirror inbox list|show|replay``: the webhook inbox, and replaying it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from cli import inspection
from cli import output as out
from cli.options import json_output_option
from storage import inspection as queries

if TYPE_CHECKING:
    from rich.table import Table


@click.group("inbox")
def inbox_group() -> None:
    """List, show or replay the webhooks received."""


def inbox_json(row: queries.InboxRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "eventId": row.event_id,
        "eventType": row.event_type,
        "receivedAt": out.rfc3339(row.received_at),
        "createdOn": row.created_on,
        "verified": row.verified,
        "outcome": row.outcome,
        "detail": row.detail,
        "duplicates": row.duplicates,
        "bookingId": row.booking_id,
        "clientId": row.client_id,
    }


def inbox_table(rows: Sequence[queries.InboxRow], *, title: str) -> Table:
    """One row per event, its type under its id (an event id is often a 36-character
    UUID: on one line, the eight columns would not fit in 100)."""
    columns = (">Seq", "Event id / type", "Received (UTC)", "Verified", "Outcome", ">Dup")
    table = out.table(*columns, "Booking", title=title, fixed=3)
    for row in rows:
        table.add_row(
            str(row.seq),
            f"{row.event_id}\n{row.event_type}",
            row.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.verified,
            row.outcome,
            str(row.duplicates),
            row.booking_id or "",
        )
    return table


@inbox_group.command("list")
@click.option("--since", type=out.INSTANT, help="Received at or after this instant.")
@click.option(
    "--limit",
    metavar="N",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="The latest N events.",
)
@json_output_option
def inbox_list(since: dt.datetime | None, limit: int, as_json: bool) -> None:
    """List the latest webhook events received, oldest first."""
    with out.database() as (_config, conn):
        rows = queries.list_inbox(conn, since, limit)
    if as_json:
        out.print_json([inbox_json(row) for row in rows])
        return
    out.console().print(inbox_table(rows, title=f"{len(rows)} event(s)"))


@inbox_group.command("show")
@click.argument("event_id", metavar="EVENT_ID")
@json_output_option
def inbox_show(event_id: str, as_json: bool) -> None:
    """Show one webhook event: how it was handled, and its body as received."""
    with out.database() as (_config, conn):
        row, body = queries.get_inbox_event(conn, event_id)
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = body
    if as_json:
        out.print_json({**inbox_json(row), "body": parsed})
        return
    for key, value in inbox_json(row).items():
        click.echo(f"{key:12} {'' if value is None else value}")
    click.echo(json.dumps(parsed, indent=2, ensure_ascii=False))


@inbox_group.command("replay")
@click.option("--since", type=out.INSTANT, help="Events received at or after this instant.")
@click.option("--event", "event_id", metavar="ID", help="This event only.")
@json_output_option
def inbox_replay(since: dt.datetime | None, event_id: str | None, as_json: bool) -> None:
    """Apply stored webhook events again, in the order received.

    Idempotent: nothing older than or equal to what the mirror holds is written, so a
    second replay changes nothing; the inbox rows keep their first outcome. Writes go
    through the mirror's writer and wait for a running serve's (SQLite allows one writer).
    """
    if (since is None) == (event_id is None):
        raise click.UsageError("give either --since T or --event ID")
    with out.database() as (config, conn):
        stored = queries.list_inbox_bodies(conn, since=since, event_id=event_id)
    if event_id is not None and not stored:
        raise click.ClickException(f"event {event_id} is not in the inbox")
    replayed: list[inspection.Replayed] = []
    if stored:
        with click.progressbar(length=len(stored), label="events", file=sys.stderr) as bar:
            replayed = asyncio.run(inspection.replay_events(config, stored, bar.update))
    outcomes = Counter(r.outcome for r in replayed)
    if as_json:
        out.print_json(
            {
                "replayed": len(replayed),
                "outcomes": dict(outcomes),
                "events": [
                    {
                        "seq": r.seq,
                        "eventId": r.event_id,
                        "eventType": r.event_type,
                        "outcome": r.outcome,
                        "bookingId": r.booking_id,
                    }
                    for r in replayed
                ],
            }
        )
        return
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    click.echo(f"replayed {len(replayed)} event(s): {counts or 'nothing to do'}")
    applied = [r for r in replayed if r.outcome == "applied"]
    if applied:
        table = out.table(">Seq", "Event id", "Type", "Booking", fixed=2)
        table.title = "Applied (changed the mirror)"
        for r in applied:
            table.add_row(str(r.seq), r.event_id, r.event_type, r.booking_id or "")
        out.console().print(table)
