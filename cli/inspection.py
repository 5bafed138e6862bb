"""What the inspection commands do, apart from printing: open the mirror's database
read-only, judge freshness, replay inbox events, back up, vacuum.

Nothing here calls Booxi: every command works with Booxi unreachable. Reads use a
read-only connection (``storage.inspection``: the SQLite file opened read-only, or a
read-only PostgreSQL session), so they run beside ``serve``; the one write, ``inbox
replay``, goes through the storage ``Writer``. ``db backup`` and ``db vacuum`` are for
SQLite files: PostgreSQL has its own tools (``pg_dump``, autovacuum).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

from mirror.config import Config
from mirror.errors import ConfigError
from storage import inspection as queries
from storage.errors import UserError
from storage.read_connection import ReadConnection
from storage.times import is_stale, utcnow

REPLAY_BATCH = 200  # events per transaction of a replay
BACKUP_STEP_PAGES = 1024  # pages copied per step of a backup (4 MiB at 4 KiB pages)


class InspectError(UserError):
    """An operator-facing failure: ``str(error)`` is one line for ``Error: ...``."""


def database_file(config: Config) -> Path | None:
    """The SQLite file named by ``[storage] url``; None for a PostgreSQL database."""
    from sqlalchemy.engine import make_url

    url = make_url(config.storage.url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise ConfigError("[storage] url: names no database file")
    return Path(url.database)


def sqlite_only(config: Config, command: str, instead: str) -> Path:
    """The SQLite file; ConfigError naming ``command`` and what to use ``instead``."""
    path = database_file(config)
    if path is None:
        raise ConfigError(
            f"[storage] url: {command} works on SQLite files, not PostgreSQL ({instead})"
        )
    return path


@contextlib.contextmanager
def read_only(config: Config) -> Iterator[ReadConnection]:
    """A read-only connection to the mirror's database, all reads in one snapshot;
    ``NotAMirrorError`` (a ``UserError``) when the database is missing, unreachable or
    not a mirror's."""
    path = database_file(config)
    if path is None:
        with _postgres(config.storage.url) as conn:
            yield conn
        return
    sqlite = queries.connect_readonly(path)
    try:
        sqlite.execute("BEGIN")
        yield sqlite
    finally:
        sqlite.close()


@contextlib.contextmanager
def _postgres(url: str) -> Iterator[ReadConnection]:
    """A read-only PostgreSQL session, checked to be a mirror's database;
    ``NotAMirrorError`` naming the server's or the network's reason when it cannot be
    read (password hidden)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from storage.reader import blocking_reads

    name = make_url(url).render_as_string(hide_password=True)
    with contextlib.ExitStack() as stack:
        try:
            conn = stack.enter_context(blocking_reads(url))
            queries.check_mirror(conn, name)
        except (DBAPIError, OSError) as error:
            reason = str(getattr(error, "orig", None) or error).splitlines()[0]
            raise queries.NotAMirrorError(f"{name}: cannot read it ({reason})") from None
        yield conn


def file_sizes(path: Path) -> tuple[int, int]:
    """Bytes of the database file and of its ``-wal`` file (0 when there is none)."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


# ---- status -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StaffStatus:
    sync: queries.StaffSync
    age_s: float | None
    state: str  # ok, stale, failing, never

    @property
    def ok(self) -> bool:
        return self.state == "ok"


@dataclasses.dataclass(frozen=True)
class Status:
    checked_at: dt.datetime
    staleness_s: float
    staff: list[StaffStatus]
    reference: queries.ScopeSync | None
    latest_webhook_at: dt.datetime | None

    @property
    def reference_state(self) -> str:
        if self.reference is None or self.reference.last_success_at is None:
            return "never"
        return "failing" if self.reference.consecutive_failures else "ok"

    @property
    def ok(self) -> bool:
        return self.reference_state == "ok" and all(s.ok for s in self.staff)

    def age_s(self, moment: dt.datetime | None) -> float | None:
        return None if moment is None else max(0.0, (self.checked_at - moment).total_seconds())


def staff_state(sync: queries.StaffSync, staleness_s: float, now: dt.datetime) -> str:
    """The read API's staleness rule (``api.freshness.Freshness.stale``): never synced,
    failing at the last attempt, or last synced more than ``staleness_s`` ago."""
    if sync.last_success_at is None:
        return "never"
    if sync.consecutive_failures:
        return "failing"
    return "stale" if is_stale(sync.last_success_at, staleness_s, now) else "ok"


def read_status(conn: ReadConnection, config: Config, now: dt.datetime | None = None) -> Status:
    """Freshness of every staff calendar in scope (``[sync] merchant_ids``, if set), of the
    reference data (a problem only when never synced or failing: it is refreshed far less
    often than ``staleness_s``), and when the newest webhook arrived."""
    now = now or utcnow()
    staleness = config.api.staleness_s
    staff = [
        StaffStatus(
            sync,
            None if sync.last_success_at is None else (now - sync.last_success_at).total_seconds(),
            staff_state(sync, staleness, now),
        )
        for sync in queries.list_staff_syncs(conn, config.sync.merchant_ids)
    ]
    return Status(
        checked_at=now,
        staleness_s=staleness,
        staff=staff,
        reference=queries.find_scope_sync(conn, "reference"),
        latest_webhook_at=queries.find_latest_webhook_at(conn),
    )


# ---- inbox replay -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Replayed:
    seq: int
    event_id: str
    event_type: str
    outcome: str  # applied, stale, ignored, unreadable
    booking_id: str | None = None


async def replay_events(
    config: Config,
    stored: Sequence[tuple[int, str, str, str]],
    on_batch: Callable[[int], None] | None = None,
) -> list[Replayed]:
    """Apply stored events (seq, event id, verified, body) again, ``REPLAY_BATCH`` per
    transaction through the writer; ``on_batch(events done)`` after each."""
    from cli.runtime import open_database
    from mirror.webhooks import MalformedEventError, WebhookEvent, parse_event, reapply_events
    from storage.writer import Writer

    results: list[Replayed] = []
    async with open_database(config) as engine, Writer(engine) as writer:
        for start in range(0, len(stored), REPLAY_BATCH):
            parsed: list[tuple[int, WebhookEvent]] = []
            for seq, event_id, verified, body in stored[start : start + REPLAY_BATCH]:
                try:
                    event = parse_event(body.encode(), {"webhook-id": event_id}, verified)
                except MalformedEventError:
                    results.append(Replayed(seq, event_id, "", "unreadable"))
                    continue
                parsed.append((seq, event))
            events = [event for _, event in parsed]
            outcomes = await writer.run(functools.partial(reapply_events, events=events))
            for (seq, event), outcome in zip(parsed, outcomes, strict=True):
                booking_id = event.booking_row["booking_id"] if event.booking_row else None
                results.append(Replayed(seq, event.event_id, event.event_type, outcome, booking_id))
            if on_batch is not None:
                on_batch(len(stored[start : start + REPLAY_BATCH]))
    return sorted(results, key=lambda r: r.seq)


# ---- db backup and vacuum ---------------------------------------------------------------
def backup(
    config: Config,
    target: Path,
    *,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[int, str]:
    """An online, consistent copy of the database at ``target`` (SQLite's backup API:
    pages are copied in steps, and the copy restarts if the mirror writes meanwhile);
    the copy's size and its ``PRAGMA quick_check``. ``on_progress(done, total)`` pages.

    The copy is written beside ``target`` and renamed into place once complete, so an
    interrupted backup never leaves a half-written file at ``target``.
    """
    source = sqlite_only(config, "db backup", "use pg_dump")
    if target.exists() and not force:
        raise InspectError(f"{target} exists: give --force to overwrite it")
    if target.exists() and target.resolve() == source.resolve():
        raise InspectError(f"{target} is the mirror's database itself")
    if not target.parent.is_dir():
        raise InspectError(f"{target.parent}: no such directory")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    conn = queries.connect_readonly(source)  # the backup API takes its own snapshots
    try:
        copy = sqlite3.connect(partial)
        try:
            conn.backup(
                copy,
                pages=BACKUP_STEP_PAGES,
                progress=None
                if on_progress is None
                else lambda _status, remaining, total: on_progress(total - remaining, total),
            )
            check = str(copy.execute("PRAGMA quick_check").fetchone()[0])
        finally:
            copy.close()
    finally:
        conn.close()
    os.replace(partial, target)
    return target.stat().st_size, check


def vacuum(config: Config) -> tuple[tuple[int, int], tuple[int, int]]:
    """VACUUM the database (and checkpoint its WAL); (file, WAL) bytes before and after.

    It needs the write lock for its whole run: with ``serve`` running, the mirror's
    writes wait for it (up to their 5 s busy timeout, then fail and are retried by the
    poller or by Booxi's webhook retries).
    """
    path = sqlite_only(config, "db vacuum", "its autovacuum does this")
    with read_only(config):  # the same checks as every command: exists, is a mirror's
        pass
    before = file_sizes(path)
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as error:
        raise InspectError(f"{path}: vacuum failed: {error}") from None
    finally:
        conn.close()
    return before, file_sizes(path)
