"""``python -m mirror``: the same as the ``booxi-mirror`` command."""

from mirror.cli import cli

cli(prog_name="booxi-mirror")
