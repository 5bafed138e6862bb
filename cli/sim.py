"""``booxi-mirror sim`` and ``booxi-mirror demo``: the Booxi simulator alone, or with the
mirror wired to it (``cli.demo``)."""

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli import logs
from cli.options import global_options
from mirror.config import check_signing_secret
from simulator.dialects import NAMES as SIM_DIALECTS

ACCESS_LOGGER = "aiohttp.access"  # both servers' request lines

if TYPE_CHECKING:
    from simulator import SimSettings


_host_option = click.option(
    "--host", metavar="HOST", default="127.0.0.1", show_default=True, help="Interface to listen on."
)
_port_option = click.option(
    "--port",
    metavar="PORT",
    type=click.IntRange(1, 65535),
    default=8765,
    show_default=True,
    help="TCP port.",
)
_seed_option = click.option(
    "--seed",
    metavar="N",
    type=int,
    default=7,
    show_default=True,
    help="Seed of the generated world.",
)


@click.command()
@_host_option
@_port_option
@_seed_option
@click.option(
    "--stores",
    metavar="N",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Stores (merchants).",
)
@click.option(
    "--staff-per-store",
    metavar="N",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Staff members in each store.",
)
@click.option(
    "--clients",
    metavar="N",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Clients.",
)
@click.option(
    "--page-size",
    metavar="N",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Items per page of paged answers.",
)
@click.option(
    "--partner-key",
    metavar="KEY",
    envvar="BOOXI_SIM_PARTNER_KEY",
    show_envvar=True,
    help="Partner key to accept (default: generated).",
)
@click.option(
    "--merchant-key",
    metavar="KEY",
    envvar="BOOXI_SIM_MERCHANT_KEY",
    show_envvar=True,
    help="Merchant key to accept (default: generated).",
)
@click.option(
    "--webhook-url",
    "webhook_urls",
    metavar="URL",
    multiple=True,
    help="Deliver webhook events to URL (repeatable).",
)
@click.option(
    "--webhook-secret",
    metavar="S",
    envvar="BOOXI_SIM_WEBHOOK_SECRET",
    show_envvar=True,
    help="Send 'Authorization: Bearer S' with webhooks.",
)
@click.option(
    "--signing-secret",
    metavar="S",
    envvar="BOOXI_SIM_SIGNING_SECRET",
    show_envvar=True,
    callback=lambda _ctx, _param, value: _valid_signing_secret(value),
    help="Sign webhooks with this Standard Webhooks secret (whsec_...).",
)
@click.option("--no-rate-limit", is_flag=True, help="Switch off Booxi's fair-use limits.")
@click.option(
    "--anchor",
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="DATE",
    help="Day (e.g. 2026-11-22) the bookings are laid out around [default: today, UTC].",
)
@click.option(
    "--dialect",
    "dialects",
    metavar="NAME",
    multiple=True,
    type=click.Choice(SIM_DIALECTS),
    help="Play another reading of Booxi (repeatable): " + ", ".join(SIM_DIALECTS) + ".",
)
def sim(
    host: str,
    port: int,
    seed: int,
    stores: int,
    staff_per_store: int,
    clients: int,
    page_size: int,
    partner_key: str | None,
    merchant_key: str | None,
    webhook_urls: tuple[str, ...],
    webhook_secret: str | None,
    signing_secret: str | None,
    no_rate_limit: bool,
    anchor: dt.datetime | None,
    dialects: tuple[str, ...],
) -> None:
    """Run the Booxi simulator, a local Booxi API.

    A faithful local Booxi with seeded data, webhook delivery and fault injection; its
    knobs are under /_sim/ (see the README). Ctrl-C stops it.
    """
    from simulator import SimSettings

    try:
        settings = SimSettings(
            partner_key=partner_key or _generate_key(),
            merchant_key=merchant_key or _generate_key(),
            seed=seed,
            stores=stores,
            staff_per_store=staff_per_store,
            clients=clients,
            page_size=page_size,
            webhook_urls=webhook_urls,
            webhook_secret=webhook_secret,
            signing_secret=signing_secret,
            rate_limit=not no_rate_limit,
            anchor=(anchor or dt.datetime.now(dt.UTC)).replace(
                hour=0, minute=0, second=0, microsecond=0, tzinfo=dt.UTC
            ),
            dialects=dialects,
        )
    except ValueError as error:  # dialects that exclude each other
        raise click.BadParameter(str(error), param_hint="'--dialect'") from None
    _serve_simulator(
        settings,
        host,
        port,
        keys_given=(partner_key is not None, merchant_key is not None),
    )


@click.command()
@_host_option
@click.option(
    "--port",
    metavar="PORT",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    help="TCP port of the mirror.",
)
@click.option(
    "--sim-port",
    metavar="PORT",
    type=click.IntRange(1, 65535),
    default=8765,
    show_default=True,
    help="TCP port of the simulator.",
)
@_seed_option
@click.option(
    "--db",
    metavar="PATH",
    type=click.Path(path_type=Path, dir_okay=False),
    default="booxi-mirror-demo.db",
    show_default=True,
    help="The mirror's SQLite file (kept between runs).",
)
def demo(host: str, port: int, sim_port: int, seed: int, db: Path) -> None:
    """Run the simulator and the mirror together, wired up.

    The Booxi simulator serves a generated world; the mirror polls it every minute,
    receives its webhooks and serves the Booxi API from an SQLite file. Keys are
    generated and printed with example commands. Each request to either is logged
    with -v only. Ctrl-C stops both.
    """
    from cli.demo import Demo, banner, run_demo

    if global_options().verbosity == 0:  # the banner stays readable
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)

    if sim_port == port:
        raise click.BadParameter("must differ from --port", param_hint="--sim-port")
    setup = Demo(host=host, port=port, sim_port=sim_port, db=db, seed=seed)
    for secret in setup.secrets():
        logs.register_secret(secret)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(setup, ready=lambda staff_id: click.echo(banner(setup, staff_id))))
    click.echo("Demo stopped.", err=True)


def _valid_signing_secret(value: str | None) -> str | None:
    if value is not None:
        try:
            check_signing_secret(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _generate_key() -> str:
    return secrets.token_urlsafe(18)


def _serve_simulator(
    settings: "SimSettings", host: str, port: int, *, keys_given: tuple[bool, bool]
) -> None:
    """Serve ``settings`` on host:port until Ctrl-C, printing the banner once listening."""
    from simulator import run_simulator

    for secret in (
        settings.partner_key,
        settings.merchant_key,
        settings.webhook_secret,
        settings.signing_secret,
    ):
        if secret:
            logs.register_secret(secret)

    def ready(base_url: str) -> None:
        click.echo(_banner(settings, base_url, keys_given))

    try:
        asyncio.run(run_simulator(settings, host, port, ready=ready))
    except KeyboardInterrupt:
        click.echo("Simulator stopped.", err=True)
    except OSError as exc:
        reason = exc.strerror or exc
        raise click.ClickException(f"cannot serve on {host}:{port}: {reason}") from None


def _banner(settings: "SimSettings", base_url: str, keys_given: tuple[bool, bool]) -> str:
    """What to tell the user once the simulator listens; the only place keys are shown."""
    partner_given, merchant_given = keys_given
    api = f"{base_url}/booking/v1"
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    week = f"from={_rfc3339(today)}&to={_rfc3339(today + dt.timedelta(days=7))}"
    key = "<your partner key>" if partner_given else settings.partner_key
    curl = f"curl -H 'Booxi-PartnerKey: {key}'"
    lines = [
        f"Booxi simulator listening on {base_url}",
        f"  Booxi API     {api}",
        f"  control API   {base_url}/_sim/",
        f"  partner key   {'(as given)' if partner_given else settings.partner_key}",
        f"  merchant key  {'(as given)' if merchant_given else settings.merchant_key}",
    ]
    lines += [f"  webhooks to   {url}" for url in settings.webhook_urls]
    lines += [
        "",
        "Try:",
        f"  {curl} '{api}/staff/list'",
        f"  {curl} '{api}/calendar?staffId=<id from /staff/list>&{week}"
        "&eventType=Appointment&include=Appointment'",
        "",
        "Ctrl-C stops it.",
    ]
    return "\n".join(lines)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
