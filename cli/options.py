"""What the commands share: the global options (``--config``, ``-v``), the config of the
running command, and the shared option decorators.

The group (``cli.main``) stores ``GlobalOptions`` on the click context; a command loads
its config with ``load_config_or_exit()`` when it needs it.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import click

from cli import logs
from mirror.config import Config, load_config


@dataclass(frozen=True)
class GlobalOptions:
    config_path: Path | None
    verbosity: int


def global_options() -> GlobalOptions:
    """The group's options for the running command (none outside a command)."""
    options = click.get_current_context().find_object(GlobalOptions)
    return options if options is not None else GlobalOptions(None, 0)


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
