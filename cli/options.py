"""What the commands share: the global options (``--config``, ``-v``, ``--log-format``),
the config of the running command, and the shared option decorators.

The group (``cli.main``) stores ``GlobalOptions`` on the click context; a command loads
its config with ``load_config_or_exit()`` when it needs it. The global options are
accepted before the command's name and after it (``add_global_options``, on every
command): ``booxi-mirror --config m.toml status`` and ``booxi-mirror status --config
m.toml`` are the same. Given in both places, ``--config`` and ``--log-format`` after the
name win and the ``-v`` add up.
"""

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli import logs
from mirror.config import Config, load_config


@dataclasses.dataclass
class GlobalOptions:
    config_path: Path | None = None
    verbosity: int = 0
    log_format: logs.LogFormat = "auto"

    def configure_logging(self) -> None:
        logs.configure_logging(self.verbosity, self.log_format)


def global_options() -> GlobalOptions:
    """The group's options for the running command (none outside a command)."""
    options = click.get_current_context().find_object(GlobalOptions)
    return options if options is not None else GlobalOptions()


CONFIG_HELP = "TOML config file; see config.example.toml."
VERBOSE_HELP = "Log DEBUG lines (-vv: libraries too)."
LOG_FORMAT_HELP = "Log lines as json, text or auto (text on a terminal, else JSON)."


def _given_after_the_name(
    update: Callable[[GlobalOptions, Any], None],
) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        options = ctx.find_object(GlobalOptions)
        if options is None or value is None or value == 0:
            return
        update(options, value)
        options.configure_logging()

    return callback


def _set_config(options: GlobalOptions, value: Path) -> None:
    options.config_path = value


def _add_verbosity(options: GlobalOptions, value: int) -> None:
    options.verbosity += value


def _set_log_format(options: GlobalOptions, value: logs.LogFormat) -> None:
    options.log_format = value


def add_global_options(command: click.Command) -> None:
    """Let ``command`` take ``--config``, ``-v`` and ``--log-format`` after its name too.

    Eager, so they are applied before the command's own options are processed; they
    update the group's ``GlobalOptions`` (and the logging) rather than reach the
    command's function."""
    command.params += [
        click.Option(
            ["--config", "config_path"],
            type=click.Path(path_type=Path),
            metavar="FILE",
            expose_value=False,
            is_eager=True,
            callback=_given_after_the_name(_set_config),
            help=CONFIG_HELP,
        ),
        click.Option(
            ["-v", "--verbose", "verbosity"],
            count=True,
            expose_value=False,
            is_eager=True,
            callback=_given_after_the_name(_add_verbosity),
            help=VERBOSE_HELP,
        ),
        click.Option(
            ["--log-format"],
            type=click.Choice(logs.LOG_FORMATS),
            metavar="FORMAT",
            expose_value=False,
            is_eager=True,
            callback=_given_after_the_name(_set_log_format),
            help=LOG_FORMAT_HELP,
        ),
    ]


def load_config_or_exit() -> Config:
    """The config for the running command, its secrets registered for log redaction.

    A ``ConfigError`` (here, or later from ``config.require_partner_key()``) is a
    ``UserError``: the group (``cli.main``) prints ``Error: <message>`` and exits 1.
    """
    config = load_config(global_options().config_path, os.environ)
    for secret in config.iter_secrets():
        logs.register_secret(secret)
    return config


json_output_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON, for scripts."
)
"""Shared by the commands that print tables or reports: ``--json`` prints their data as
JSON instead, for scripts."""
