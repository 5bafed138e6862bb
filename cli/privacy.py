"""``booxi-mirror privacy enforce|report``: clients' personal data, held no longer than
``[privacy] retention_days`` allows."""

from __future__ import annotations

import asyncio
import json

import click

from cli.options import load_config_or_exit
from storage.times import utcnow


@click.group("privacy")
def privacy_group() -> None:
    """Enforce retention of clients' personal data, or report what is held."""


@privacy_group.command("enforce")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def privacy_enforce(as_json: bool) -> None:
    """Strip the personal data of clients past [privacy] retention_days, everywhere."""
    from cli.runtime import open_database
    from mirror.privacy import enforce_retention
    from storage.writer import Writer

    config = load_config_or_exit()
    days = config.privacy.retention_days
    if days is None:
        raise click.ClickException(
            "[privacy] retention_days is not set: set it in the config file or "
            "BOOXI_MIRROR_PRIVACY__RETENTION_DAYS"
        )

    async def run() -> dict[str, object]:
        async with open_database(config) as engine, Writer(engine) as writer:
            outcome = await enforce_retention(writer, days)
        return {
            "retentionDays": days,
            "anonymizedClients": len(outcome.anonymized),
            "liftedClients": len(outcome.lifted),
            **outcome.counts,
        }

    result = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"retention {days} days: {result['anonymizedClients']} client(s) anonymized now; "
        f"{result['bookings']} booking(s), {result['clients']} client row(s), "
        f"{result['inbox_events']} inbox event(s), {result['idempotency_results']} kept "
        f"result(s) stripped"
    )


@privacy_group.command("report")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def privacy_report(as_json: bool) -> None:
    """Which clients' personal data the mirror holds, and how old their bookings are."""
    from cli.runtime import open_database
    from storage.erasure import retention_report

    config = load_config_or_exit()

    async def run() -> list[dict[str, object]]:
        async with open_database(config) as engine, engine.connect() as conn:
            return await conn.run_sync(retention_report, utcnow())

    rows = asyncio.run(run())
    if as_json:
        click.echo(
            json.dumps({"retentionDays": config.privacy.retention_days, "clients": rows}, indent=2)
        )
        return
    days = config.privacy.retention_days
    policy = "as long as Booxi keeps it" if days is None else f"{days} days"
    click.echo(f"{len(rows)} client(s) with personal data held; retention: {policy}")
    click.echo(f"{'client':>10}  {'store':>8}  {'last booking ends':<27}  future")
    for row in rows:
        click.echo(
            f"{row['clientId']:>10}  {row['merchantId'] or '':>8}  "
            f"{row['lastBookingEnd'] or '-':<27}  {row['futureBookings']}"
        )
