"""``booxi-mirror status``: how fresh each staff calendar is, for people and monitoring."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import click

from cli import inspection
from cli import output as out
from cli.options import json_output_option

MARKERS = {"ok": "", "stale": "STALE", "failing": "FAILING", "never": "NEVER"}


@click.command()
@json_output_option
def status(as_json: bool) -> None:
    """Show how fresh each staff calendar is; exit 2 if any is stale.

    One row per store and staff member: the last successful sync and its age, the range
    the polls cover, and the failures in a row (their last errors follow the table); the
    header gives the webhook lag (time since the newest webhook arrived). A row is
    marked STALE when its last success is older than [api] staleness_s, FAILING when its
    last attempt failed, NEVER when it was never synced.

    \b
    Exit status, for monitoring:
      0  every staff calendar is fresh
      2  one is STALE, FAILING or NEVER, or the reference data failed at
         its last refresh or was never synced (webhook lag does not count)
      1  an error (no database, bad config)
    """
    with out.database() as (config, conn):
        report = inspection.read_status(conn, config)
    if as_json:
        out.print_json(_status_json(report))
    else:
        _print_status(report)
    sys.exit(0 if report.ok else 2)


def _status_json(report: inspection.Status) -> dict[str, Any]:
    staff = []
    for row in report.staff:
        sync = row.sync
        staff.append(
            {
                "merchantId": sync.merchant_id,
                "merchantName": sync.merchant_name,
                "staffId": sync.staff_id,
                "staffName": sync.staff_name,
                "state": row.state,
                "stale": not row.ok,
                "lastSuccessAt": out.rfc3339(sync.last_success_at),
                "ageS": None if row.age_s is None else round(row.age_s, 1),
                "lastAttemptAt": out.rfc3339(sync.last_attempt_at),
                "window": None
                if sync.window is None
                else {"from": out.rfc3339(sync.window[0]), "to": out.rfc3339(sync.window[1])},
                "covered": None
                if sync.covered is None
                else {
                    "from": out.booxi_time(sync.covered[0]),
                    "to": out.booxi_time(sync.covered[1]),
                },
                "lastError": sync.last_error,
                "consecutiveFailures": sync.consecutive_failures,
            }
        )
    reference = report.reference
    states = Counter(row.state for row in report.staff)
    return {
        "summary": {
            "checkedAt": out.rfc3339(report.checked_at),
            "ok": report.ok,
            "stalenessS": report.staleness_s,
            "staff": len(report.staff),
            "states": {state: states.get(state, 0) for state in MARKERS},
            "reference": {
                "state": report.reference_state,
                "lastSuccessAt": out.rfc3339(reference.last_success_at) if reference else None,
                "ageS": report.age_s(reference.last_success_at if reference else None),
                "lastError": reference.last_error if reference else None,
                "consecutiveFailures": reference.consecutive_failures if reference else 0,
            },
            "webhookLagS": report.age_s(report.latest_webhook_at),
            "latestWebhookAt": out.rfc3339(report.latest_webhook_at),
        },
        "staff": staff,
    }


def _print_status(report: inspection.Status) -> None:
    console = out.console()
    fresh = sum(row.ok for row in report.staff)
    console.print(
        f"Mirror status at {out.rfc3339(report.checked_at)}: {fresh} of {len(report.staff)} "
        f"staff calendar(s) fresh (stale after {out.age(report.staleness_s)})."
    )
    reference = report.reference
    if reference is None or reference.last_success_at is None:
        ref = "never synced"
    else:
        ref = (
            f"synced {out.rfc3339(reference.last_success_at)} "
            f"({out.age(report.age_s(reference.last_success_at))} ago)"
        )
        if reference.consecutive_failures:
            ref += f", FAILING ({reference.consecutive_failures} in a row)"
    console.print(f"Reference data: {ref}.")
    if report.latest_webhook_at is None:
        console.print("Webhook lag: no webhook received yet.")
    else:
        console.print(
            f"Webhook lag: {out.age(report.age_s(report.latest_webhook_at))} "
            f"(newest received {out.rfc3339(report.latest_webhook_at)})."
        )
    stores = {r.sync.merchant_id: r.sync.merchant_name for r in report.staff if r.sync.merchant_id}
    if stores:
        console.print("Stores: " + ", ".join(f"{i} {n}".strip() for i, n in stores.items()) + ".")
    table = out.table(
        "", "Store", "Staff", "Last sync (UTC)", ">Age", "Covered (UTC)", ">Fails", fixed=7
    )
    errors = []
    for row in report.staff:
        sync = row.sync
        covered = ""
        if sync.covered is not None:
            covered = f"{sync.covered[0][:10]}..{sync.covered[1][:10]}"
        table.add_row(
            MARKERS[row.state],
            str(sync.merchant_id if sync.merchant_id is not None else "-"),
            f"{sync.staff_id} {sync.staff_name}".strip(),
            out.rfc3339(sync.last_success_at) or "never",
            out.age(row.age_s),
            covered,
            str(sync.consecutive_failures),
            style=None if row.ok else "bold red",
        )
        if sync.last_error:
            errors.append(f"staff {sync.staff_id}: {sync.last_error}")
    console.print(table)
    if reference is not None and reference.last_error:
        errors.insert(0, f"reference data: {reference.last_error}")
    if errors:
        console.print("Last errors:")
        for line in errors:
            console.print(f"  {line}")
