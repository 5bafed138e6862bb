"""``booxi-mirror db upgrade|check|backup|vacuum``: the mirror's database."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from cli import inspection
from cli import output as out
from cli.options import json_output_option, load_config_or_exit
from storage import inspection as queries


@click.group("db")
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


@db_group.command("check")
@json_output_option
def db_check(as_json: bool) -> None:
    """Check integrity, foreign keys and schema revision; exit 1 if not ok.

    On PostgreSQL the schema revision only: the server enforces foreign keys, and its
    integrity is checked with its own tools (pg_amcheck).
    """
    from storage.migrate import head_revision

    with out.database() as (_config, conn):
        found = queries.check_database(conn)
    head = head_revision()
    sound = found.integrity is None or found.integrity == ["ok"]
    ok = sound and not found.foreign_keys and found.revision == head
    if as_json:
        out.print_json(
            {
                "ok": ok,
                "integrity": found.integrity,
                "foreignKeyViolations": [list(v) for v in found.foreign_keys],
                "revision": found.revision,
                "head": head,
            }
        )
    else:
        if found.integrity is None:
            click.echo("integrity: not checked on PostgreSQL (pg_amcheck checks it)")
        else:
            click.echo(f"integrity: {'; '.join(found.integrity[:20])}")
        violations = len(found.foreign_keys)
        click.echo(f"foreign keys: {f'{violations} violation(s)' if violations else 'ok'}")
        schema = f"schema at revision {found.revision} of head {head}"
        if found.revision != head:
            schema += ": run `booxi-mirror db upgrade`"
        click.echo(schema)
    if not ok:
        sys.exit(1)


@db_group.command("backup")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@json_output_option
def db_backup(path: Path, force: bool, as_json: bool) -> None:
    """Copy the database to PATH, online and consistent (SQLite's backup API).

    Safe while serve runs; the copy is renamed into place only once complete.
    """
    config = load_config_or_exit()
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="pages", file=sys.stderr)
            bar.__enter__()
        bar.update(max(0, done - bar.pos))  # a restarted copy does not go back

    try:
        size, check = inspection.backup(config, path, force=force, on_progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        out.print_json({"path": str(path), "bytes": size, "quickCheck": check})
    else:
        click.echo(f"backup written to {path} ({out.size(size)}), quick_check: {check}")
    if check != "ok":
        sys.exit(1)


@db_group.command("vacuum")
@json_output_option
def db_vacuum(as_json: bool) -> None:
    """Rebuild the database file to reclaim free space.

    The one command that opens the file read-write. It holds the write lock while it
    runs: best run with serve stopped, since serve's writes wait for it and fail after
    5 s (webhooks are then retried by Booxi, polls by the poller).
    """
    config = load_config_or_exit()
    click.echo("vacuuming...", err=True)
    before, after = inspection.vacuum(config)
    if as_json:
        out.print_json(
            {
                "before": {"fileBytes": before[0], "walBytes": before[1]},
                "after": {"fileBytes": after[0], "walBytes": after[1]},
            }
        )
    else:
        click.echo(
            f"database {out.size(before[0])} (-wal {out.size(before[1])}) -> "
            f"{out.size(after[0])} (-wal {out.size(after[1])})"
        )
