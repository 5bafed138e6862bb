"""``booxi-mirror config check|show``: the effective configuration."""

import json
import os

import click

from cli.options import global_options, load_config_or_exit
from mirror.config import resolve_config_path


@click.group("config")
def config_group() -> None:
    """Check or show the effective configuration."""


@config_group.command("check")
def config_check() -> None:
    """Load the config and say whether it is valid."""
    load_config_or_exit()
    path = resolve_config_path(global_options().config_path, os.environ)
    click.echo(f"config OK: {path if path is not None else 'defaults'}")


@config_group.command("show")
def config_show() -> None:
    """Print the effective config as JSON, secrets masked."""
    config = load_config_or_exit()
    click.echo(json.dumps(config.model_dump(mode="json"), indent=2))
