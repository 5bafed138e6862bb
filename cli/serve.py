"""``booxi-mirror serve`` and ``booxi-mirror sync``: run the mirror, until stopped or for
one pass. The work is in ``cli.serving`` and ``cli.runtime``, imported when a command
runs, so that ``--help`` stays quick."""

import asyncio
import sys
from typing import Any

import click

from cli.options import load_config_or_exit


@click.command()
def serve() -> None:
    """Run the mirror: API, webhook receiver and poller, until SIGTERM or Ctrl-C."""
    from cli import logs
    from cli.serving import serve as run_serve

    config = load_config_or_exit()
    config.require_partner_key()
    logs.hold_lines()  # one write per batch of access lines, not one per request
    asyncio.run(run_serve(config, ready=lambda url: click.echo(f"booxi-mirror serving on {url}")))


@click.command()
@click.option(
    "--merchant",
    "merchant_ids",
    metavar="ID",
    type=int,
    multiple=True,
    help="Only this store (repeatable); default: [sync] merchant_ids, else all.",
)
@click.option(
    "--staff",
    "staff_ids",
    metavar="ID",
    type=int,
    multiple=True,
    help="Only this staff member's calendar (repeatable).",
)
def sync(merchant_ids: tuple[int, ...], staff_ids: tuple[int, ...]) -> None:
    """Run one sync pass now: reference data, then every staff calendar in scope."""
    from cli.runtime import sync_once

    config = load_config_or_exit()
    config.require_partner_key()
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="staff calendars", file=sys.stderr)
            bar.__enter__()
        bar.update(1)

    try:
        result = asyncio.run(
            sync_once(config, merchant_ids=merchant_ids, staff_ids=staff_ids, on_staff=progress)
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    polls = result.polls
    click.echo(
        f"synced {len(result.merchants)} store(s), {len(polls) - len(result.failures)} of "
        f"{len(polls)} staff calendar(s): {sum(p.bookings for p in polls)} bookings, "
        f"{sum(p.events for p in polls)} events, {sum(p.looked_up for p in polls)} looked up, "
        f"in {result.duration_s:.1f} s"
    )
    if result.reference_error:
        click.echo(f"reference data: {result.reference_error}", err=True)
    for failed in result.failures:
        click.echo(f"staff {failed.staff_id}: {failed.error}", err=True)
    if not result.ok:
        sys.exit(1)
