"""The ``booxi-mirror`` command: the composition root that wires config, logging and parts.

Commands stay thin: they parse options, load the config with ``load_config_or_exit()``
when they need it, and call one function. An operator mistake (``ConfigError``) prints
``Error: <one line>`` and exits 1, never a traceback.
"""

import asyncio
import datetime as dt
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli import logs
from mirror import __version__
from mirror.config import (
    CONFIG_ENV,
    Config,
    check_signing_secret,
    load_config,
    resolve_config_path,
)
from mirror.errors import ConfigError
from simulator.dialects import NAMES as SIM_DIALECTS

if TYPE_CHECKING:
    from simulator import SimSettings


@dataclass(frozen=True)
class _GlobalOptions:
    config_path: Path | None
    verbosity: int


class _MirrorGroup(click.Group):
    """Turns a ``ConfigError`` from any command into ``Error: <message>`` and exit 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_MirrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar=CONFIG_ENV,
    metavar="FILE",
    show_envvar=True,
    help="TOML config file; see config.example.toml.",
)
@click.option(
    "-v", "--verbose", "verbosity", count=True, help="Log DEBUG lines (-vv: libraries too)."
)
@click.version_option(__version__, package_name="booxi-mirror", prog_name="booxi-mirror")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbosity: int) -> None:
    """A local caching mirror for the Booxi booking API.

    Settings come from the config file, overridden by environment variables named
    BOOXI_MIRROR_<SECTION>__<KEY>, e.g. BOOXI_MIRROR_BOOXI__PARTNER_KEY.
    """
    ctx.obj = _GlobalOptions(config_path, verbosity)
    logs.configure_logging(verbosity)


def load_config_or_exit() -> Config:
    """The config for the running command, its secrets registered for log redaction.

    A ``ConfigError`` (here, or later from ``config.require_partner_key()``) becomes
    ``Error: <message>`` on stderr and exit status 1.
    """
    try:
        config = load_config(_global_options().config_path, os.environ)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for secret in config.iter_secrets():
        logs.register_secret(secret)
    return config


json_output_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON, for scripts."
)
"""Shared by the commands that print tables or reports: ``--json`` prints their data as
JSON instead, for scripts."""


def _global_options() -> _GlobalOptions:
    options = click.get_current_context().find_object(_GlobalOptions)
    return options if options is not None else _GlobalOptions(None, 0)


# config


@cli.group("config")
def config_group() -> None:
    """Check or show the effective configuration."""


@config_group.command("check")
def config_check() -> None:
    """Load the config and say whether it is valid."""
    load_config_or_exit()
    path = resolve_config_path(_global_options().config_path, os.environ)
    click.echo(f"config OK: {path if path is not None else 'defaults'}")


@config_group.command("show")
def config_show() -> None:
    """Print the effective config as JSON, secrets masked."""
    config = load_config_or_exit()
    click.echo(json.dumps(config.model_dump(mode="json"), indent=2))


# db, sync, serve


@cli.group("db")
def db_group() -> None:
    """Manage the mirror's database."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations (also done at every start)."""
    from cli.runtime import open_database
    from storage.migrate import current_revision

    config = load_config_or_exit()

    async def run() -> str | None:
        async with open_database(config) as engine:
            return await current_revision(engine)

    revision = asyncio.run(run())
    click.echo(f"database at revision {revision}")


@cli.command()
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


@cli.command()
def serve() -> None:
    """Run the mirror: API, webhook receiver and poller, until SIGTERM or Ctrl-C."""
    from cli.runtime import serve as run_serve

    config = load_config_or_exit()
    config.require_partner_key()
    asyncio.run(run_serve(config, ready=lambda url: click.echo(f"booxi-mirror serving on {url}")))


# sim and demo

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


@cli.command()
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


@cli.command()
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
    generated and printed with example commands. Ctrl-C stops both.
    """
    from cli.demo import Demo, DemoStartError, banner, run_demo

    if sim_port == port:
        raise click.BadParameter("must differ from --port", param_hint="--sim-port")
    setup = Demo(host=host, port=port, sim_port=sim_port, db=db, seed=seed)
    for secret in setup.secrets():
        logs.register_secret(secret)
    try:
        asyncio.run(run_demo(setup, ready=lambda staff_id: click.echo(banner(setup, staff_id))))
    except KeyboardInterrupt:
        pass
    except DemoStartError as exc:
        raise click.ClickException(str(exc)) from None
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


# Commands that live in their own modules register themselves on ``cli`` when imported.
from cli import privacy, repair, show  # noqa: E402, F401
