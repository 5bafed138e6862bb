"""The ``booxi-mirror`` command: the click group, and the one place its commands are added.

Commands stay thin: they parse options, load the config with
``cli.options.load_config_or_exit()`` when they need it, and call one function. An
operator mistake (a ``storage.errors.UserError``: a bad config, a database file that is
not a mirror's...) prints ``Error: <one line>`` and exits 1, never a traceback. The
command modules import nothing heavy at the top, so that ``--help`` stays quick; each
command imports what it runs.
"""

from pathlib import Path

import click

from cli import config, db, inbox, logs, privacy, repair, serve, show, sim, status
from cli.options import (
    CONFIG_HELP,
    LOG_FORMAT_HELP,
    VERBOSE_HELP,
    GlobalOptions,
    add_global_options,
)
from mirror import __version__
from mirror.config import CONFIG_ENV
from storage.errors import UserError


class _MirrorGroup(click.Group):
    """Runs the command; an operator error (``UserError``) from any command becomes
    ``Error: <message>`` and exit status 1, never a traceback. The one place it is caught."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_MirrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar=CONFIG_ENV,
    metavar="FILE",
    show_envvar=True,
    help=CONFIG_HELP,
)
@click.option("-v", "--verbose", "verbosity", count=True, help=VERBOSE_HELP)
@click.option(
    "--log-format",
    type=click.Choice(logs.LOG_FORMATS),
    metavar="FORMAT",
    default="auto",
    show_default=True,
    help=LOG_FORMAT_HELP,
)
@click.version_option(__version__, package_name="booxi-mirror", prog_name="booxi-mirror")
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, verbosity: int, log_format: logs.LogFormat
) -> None:
    """A local caching mirror for the Booxi booking API.

    Settings come from the config file, overridden by environment variables named
    BOOXI_MIRROR_<SECTION>__<KEY>, e.g. BOOXI_MIRROR_BOOXI__PARTNER_KEY. --config, -v
    and --log-format may also follow a command's name.
    """
    ctx.obj = GlobalOptions(config_path, verbosity, log_format)
    ctx.obj.configure_logging()


cli.add_command(config.config_group)
cli.add_command(db.db_group)
cli.add_command(serve.serve)
cli.add_command(serve.sync)
cli.add_command(sim.sim)
cli.add_command(sim.demo)
cli.add_command(status.status)
cli.add_command(show.calendar)
cli.add_command(show.history)
cli.add_command(show.booking)
cli.add_command(show.clients_group)
cli.add_command(show.stats)
cli.add_command(inbox.inbox_group)
cli.add_command(repair.audit)
cli.add_command(repair.resync)
cli.add_command(privacy.privacy_group)


def _every_command(group: click.Group) -> list[click.Command]:
    found: list[click.Command] = []
    for command in group.commands.values():
        found.append(command)
        if isinstance(command, click.Group):
            found += _every_command(command)
    return found


for _command in _every_command(cli):
    add_global_options(_command)
