"""What the inspection commands share: option types, the read-only database, tables
(rich, to stdout) and JSON, and the formatting of instants, ages and sizes.

A table goes to stdout through a rich ``Console`` writing with ``click.echo``: the
terminal's width and colours on a terminal, else plain text 100 columns wide
(``$COLUMNS`` if set). Markup
and emoji codes are off, so stored names and error texts print as they are.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, cast

import click

from cli import inspection
from cli.options import load_config_or_exit
from mirror.config import Config
from storage.errors import NotFoundError
from storage.read_connection import ReadConnection
from storage.times import parse_instant

if TYPE_CHECKING:  # rich is imported by the commands that print tables
    from rich.console import Console
    from rich.table import Table

NON_TERMINAL_WIDTH = 100


class InstantType(click.ParamType):
    """An RFC 3339 date-time, or a plain date meaning 00:00 UTC that day."""

    name = "T"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.datetime):
            return value
        text = str(value).strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
            return parse_instant(text)
        except ValueError:
            self.fail(
                f"{text!r}: give an RFC 3339 date-time (2024-11-22T15:00:00Z) or a date "
                "(2024-11-22)",
                param,
                ctx,
            )


INSTANT: click.ParamType = InstantType()


class ExternalIdType(click.ParamType):
    """``MODULE:ID``: a module id and the client's id in that system."""

    name = "MODULE:ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        module_id, sep, external_id = str(value).partition(":")
        if not sep or not module_id or not external_id:
            self.fail(f"{value!r}: give MODULE:ID, e.g. your_crm_module:CUSTOMER-123", param, ctx)
        return module_id, external_id


EXTERNAL_ID: click.ParamType = ExternalIdType()


@contextlib.contextmanager
def database() -> Iterator[tuple[Config, ReadConnection]]:
    """The config and a read-only connection; a missing or foreign database is an Error: line
    (a ``UserError``), and so is a row the command looks up that is not there."""
    config = load_config_or_exit()
    try:
        with inspection.read_only(config) as conn:
            yield config, conn
    except NotFoundError as error:
        raise click.ClickException(str(error)) from None


class _ClickStdout(io.TextIOBase):
    """A text file for rich that writes with ``click.echo`` (which strips any ANSI codes
    when stdout is not a terminal)."""

    def write(self, text: str) -> int:
        click.echo(text, nl=False)
        return len(text)

    def isatty(self) -> bool:
        return sys.stdout.isatty()


def console() -> Console:
    """Tables to stdout: the terminal's width and colours, else plain text, 100 wide."""
    from rich import console as rich_console

    stream = _ClickStdout()
    width = None
    if not stream.isatty():
        try:
            width = int(os.environ.get("COLUMNS", "")) or NON_TERMINAL_WIDTH
        except ValueError:
            width = NON_TERMINAL_WIDTH
    # markup and emoji off: stored names and error texts are printed as they are
    return rich_console.Console(
        file=cast(IO[str], stream), width=width, markup=False, emoji=False, highlight=False
    )


def table(*columns: str, title: str | None = None, fixed: int = 0) -> Table:
    """A table with a rule under its header; its first ``fixed`` columns never wrap (ids,
    times), the others wrap, and columns named with a leading ``>`` are right-aligned."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        title_justify="left",
    )
    for index, name in enumerate(columns):
        right = name.startswith(">")
        table.add_column(
            name.removeprefix(">"),
            justify="right" if right else "left",
            no_wrap=index < fixed,
            overflow="fold",  # a long word is broken, never cut short
        )
    return table


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def rfc3339(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def booxi_time(key: str | None) -> str | None:
    """A stored instant key (``...:00.000000Z``) as Booxi writes it (``...:00Z``)."""
    return None if not key else rfc3339(parse_instant(key))


def minute(text: str | None) -> str:
    """``2024-11-22 15:00`` from an RFC 3339 instant (UTC)."""
    if not text:
        return ""
    try:
        return parse_instant(text).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return text


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"
