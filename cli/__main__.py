"""``python -m cli``: the same as the ``booxi-mirror`` command."""

from cli.main import cli

cli(prog_name="booxi-mirror")
