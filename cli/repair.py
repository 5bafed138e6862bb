"""``booxi-mirror audit`` and ``booxi-mirror resync``: find and repair drift from Booxi.

The commands parse options and run ``run_audit()`` / ``run_resync()``, which tests call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from cli.options import load_config_or_exit
from mirror.config import Config

if TYPE_CHECKING:
    from mirror.audit import AuditResult, Difference
    from mirror.repair import RepairResult
    from mirror.resync import ResyncResult

EXIT_DIFFERENCES = 3
KINDS = (  # as mirror.audit.KINDS, without importing it for --help
    "missing",
    "extra",
    "moved_staff",
    "status_differs",
    "older_version",
    "newer_version",
    "content_differs",
)
Progress = Callable[[int, int], None]


def _merchant_option(text: str) -> Callable[[Any], Any]:
    return click.option(
        "--merchant", "merchant_ids", metavar="ID", type=int, multiple=True, help=text
    )


def _staff_option(text: str) -> Callable[[Any], Any]:
    return click.option("--staff", "staff_ids", metavar="ID", type=int, multiple=True, help=text)


class _Progress:
    """A progress bar on stderr, drawn from the first report on."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@dataclasses.dataclass
class AuditOutcome:
    found: AuditResult
    repaired: RepairResult | None = None


async def run_audit(
    config: Config,
    *,
    merchant_ids: Sequence[int] = (),
    staff_ids: Sequence[int] = (),
    fix: bool = False,
    on_audit: Progress | None = None,
    on_repair: Progress | None = None,
    on_recheck: Progress | None = None,
) -> AuditOutcome:
    """Audit (and with ``fix``, repair) the staff in scope; ``AuditError`` if impossible."""
    from cli.runtime import open_runtime
    from mirror.audit import audit, audit_scope, record_audit
    from mirror.poller import Window
    from mirror.repair import repair
    from storage.times import utcnow

    async with open_runtime(config) as runtime:
        scope = merchant_ids or config.sync.merchant_ids
        staff = await audit_scope(runtime.engine, scope, staff_ids)
        window = Window.around(utcnow(), config.sync.horizon_days)
        found = await audit(runtime.client, runtime.engine, staff, window, on_staff=on_audit)
        if not fix or not found.differences:
            await record_audit(runtime.writer, found, [] if fix else None)
            return AuditOutcome(found)
        repaired = await repair(
            runtime.client,
            runtime.writer,
            runtime.engine,
            found,
            on_staff=on_repair,
            on_recheck=on_recheck,
        )
        await record_audit(runtime.writer, found, repaired.left)
        return AuditOutcome(found, repaired)


@click.command()
@_merchant_option("Only this store's staff (repeatable).")
@_staff_option("Only this staff member (repeatable).")
@click.option("--repair", "fix", is_flag=True, help="Fix what is found, then audit again.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
def audit(
    merchant_ids: tuple[int, ...], staff_ids: tuple[int, ...], fix: bool, as_json: bool
) -> None:
    """Compare the mirror with Booxi now and list every difference.

    Re-reads each staff member's calendar window from Booxi (default: every staff member
    mirrored, or of [sync] merchant_ids) without writing, and classifies what differs:
    missing, extra, moved_staff, status_differs, older_version, newer_version,
    content_differs. Exit status: 0 no difference left, 3 differences, 1 error.
    """
    config = load_config_or_exit()
    config.require_partner_key()
    bars = [_Progress("staff audited"), _Progress("staff repaired"), _Progress("staff rechecked")]
    try:
        outcome = asyncio.run(
            run_audit(
                config,
                merchant_ids=merchant_ids,
                staff_ids=staff_ids,
                fix=fix,
                on_audit=bars[0],
                on_repair=bars[1],
                on_recheck=bars[2],
            )
        )
    finally:
        for bar in bars:
            bar.close()
    found, repaired = outcome.found, outcome.repaired
    if as_json:
        data = found.as_json()
        if repaired is not None:
            data["repair"] = _repair_json(repaired)
        click.echo(json.dumps(data, indent=2))
    else:
        _print_audit(found)
        if repaired is not None:
            _print_repair(repaired)
    if repaired is not None:
        for failed in repaired.failures:
            click.echo(f"staff {failed.staff_id}: {failed.error}", err=True)
        if repaired.failures:
            sys.exit(1)
        if repaired.left:
            sys.exit(EXIT_DIFFERENCES)
    elif found.differences:
        sys.exit(EXIT_DIFFERENCES)


async def run_resync(
    config: Config,
    *,
    merchant_ids: Sequence[int] = (),
    staff_ids: Sequence[int] = (),
    progress: Progress | None = None,
) -> ResyncResult:
    """Drop and rebuild the calendars in scope (see ``mirror.resync``)."""
    from cli.runtime import open_runtime
    from mirror.resync import resync_staff

    async with open_runtime(config) as runtime:
        return await resync_staff(
            runtime.client,
            runtime.writer,
            runtime.engine,
            horizon_days=config.sync.horizon_days,
            merchant_ids=merchant_ids,
            staff_ids=staff_ids,
            on_staff=progress,
        )


@click.command()
@_staff_option("Rebuild this staff member's calendar (repeatable).")
@_merchant_option("Rebuild every calendar of this store (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Rebuild every calendar in [sync] scope.")
def resync(staff_ids: tuple[int, ...], merchant_ids: tuple[int, ...], everything: bool) -> None:
    """Drop the mirror's calendar window and rebuild it from Booxi.

    For --staff, --merchant or --all: reference data is refreshed first (nothing is
    dropped if Booxi fails), then the window's calendar events, time slots and bookings
    are dropped in one transaction and each calendar polled again. Exit status 1 when a
    calendar could not be rebuilt (each is listed).
    """
    if sum(map(bool, (staff_ids, merchant_ids, everything))) != 1:
        raise click.UsageError("give one of --staff ID, --merchant ID or --all")
    config = load_config_or_exit()
    config.require_partner_key()
    bar = _Progress("staff calendars")
    try:
        result = asyncio.run(
            run_resync(
                config,
                merchant_ids=merchant_ids or (config.sync.merchant_ids if everything else ()),
                staff_ids=staff_ids,
                progress=bar,
            )
        )
    finally:
        bar.close()
    polls, dropped = result.polls, result.dropped
    rebuilt = len({p.staff_id for p in polls if not p.error})
    click.echo(
        f"resynced {rebuilt} of {len(result.staff)} staff calendar(s): dropped "
        f"{dropped.bookings} bookings, {dropped.events} events, {dropped.time_slots} time "
        f"slots; fetched {sum(p.bookings for p in polls)} bookings, "
        f"{sum(p.events for p in polls)} events, in {result.duration_s:.1f} s"
    )
    for staff_id in result.not_listed:
        click.echo(f"staff {staff_id}: not listed by Booxi, nothing dropped", err=True)
    for failed in result.failures:
        click.echo(f"staff {failed.staff_id}: {failed.error}", err=True)
    if not result.ok:
        sys.exit(1)


# ---- output -----------------------------------------------------------------------------


def _print_audit(found: AuditResult) -> None:
    window = found.as_json()["window"]
    click.echo(
        f"audited {len(found.staff)} staff member(s) from {window['from']} to {window['to']}: "
        f"{len(found.differences)} difference(s)"
    )
    if found.differences:
        _print_summary(found)
        _print_differences(found.differences)


def _print_repair(repaired: RepairResult) -> None:
    polled = sorted({p.staff_id for p in repaired.polls})
    click.echo(
        f"repair: polled {len(polled)} staff member(s), rewrote {repaired.rewritten} row(s): "
        f"{repaired.repaired} repaired, {len(repaired.left)} left"
    )
    if repaired.left and not repaired.failures:
        _print_differences(repaired.left)


def _print_summary(found: AuditResult) -> None:
    from cli.output import console, table

    kinds = [k for k in KINDS if k in found.by_kind()]
    summary = table(
        "staff", *[f">{k}" for k in kinds], ">total", title="Differences per staff member"
    )
    for staff_id, counts in sorted(found.by_staff().items(), key=lambda i: i[0] or 0):
        cells = [str(counts.get(k, "")) for k in kinds]
        summary.add_row(str(staff_id or "-"), *cells, str(sum(counts.values())))
    totals = found.by_kind()
    summary.add_section()
    summary.add_row("all", *[str(totals[k]) for k in kinds], str(len(found.differences)))
    console().print(summary)


def _print_differences(differences: Sequence[Difference]) -> None:
    from cli.output import console, table

    listing = table("kind", "what", "mirror", "booxi", title="Differences", fixed=2)
    for diff in differences:
        what = f"{diff.object} {diff.id}\nstaff {diff.staff_id or '-'}"
        listing.add_row(diff.kind, what, _side(diff.mirror, diff), _side(diff.booxi, diff))
    console().print(listing)


def _side(side: dict[str, Any] | None, diff: Difference) -> str:
    """One side of a difference, a fact a line; its staff member when not ``diff``'s."""
    if side is None:
        return "not found" if diff.kind == "extra" else "-"
    lines = [] if side.get("staff_id") == diff.staff_id else [f"staff {side.get('staff_id')}"]
    if diff.object == "booking":
        lines += [str(side.get("status")), str(side.get("modified_on"))]
        if side is diff.mirror and diff.fields:
            lines.append(f"differs: {', '.join(diff.fields)}")
        if side is diff.mirror and diff.events:
            lines.append(f"+{len(diff.events)} event(s)")
    else:
        lines.append(str(side.get("type")))
        if side.get("booking_id"):
            lines.append(f"booking {side['booking_id']}")
        if side.get("provisional"):
            lines.append("provisional")
    return "\n".join(lines)


def _repair_json(repaired: RepairResult) -> dict[str, Any]:
    return {
        "polled": sorted({p.staff_id for p in repaired.polls}),
        "rewritten": repaired.rewritten,
        "repaired": repaired.repaired,
        "left": [d.as_json() for d in repaired.left],
        "failures": [{"staff_id": p.staff_id, "error": p.error} for p in repaired.failures],
    }
