"""Operations: liveness, health, readiness, metrics and the OpenAPI document.

None of these calls Booxi. ``/readyz`` judges three things from the database alone:

- ``database``: ``SELECT 1`` (and reading the sync state) within 2 s, else ``fail`` and
  the mirror is ``unready`` (503).
- ``sync``: the oldest last success among the staff calendars the mirror holds (of the
  ``[sync] merchant_ids`` stores, if set), against ``[api] staleness_s``; ``degraded``
  when older, or while a staff calendar (or every one: no sync yet) has never been
  polled successfully, including staff members the poller has not reached yet.
- ``upstream``: ``degraded`` when the latest attempt of the reference data or of any
  staff calendar failed because Booxi was unreachable (``BooxiUnavailable``), after its
  last success; ``unknown`` before any attempt.

- ``poller`` (under ``serve`` only): ``{"status": "ok", "polls": true|false}``, whether
  this replica runs the poller (``mirror.leader``). Never degraded: a replica that does
  not poll is as ready as one that does; whether some replica polls shows in ``sync``.

``ready`` and ``degraded`` answer 200 (a degraded mirror still serves what it holds);
``unready`` answers 503.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import json_error
from api.keys import BOOXI, CONFIG, ENGINE, METRICS, OPENAPI, POLL_LEADERSHIP, READER
from api.metrics import ReadyStats, Snapshot
from api.ready import READY
from storage import inbox, store_queue, sync_state
from storage.sync_state import SyncStateRow
from storage.times import instant_key, is_stale, utcnow

log = logging.getLogger(__name__)

DATABASE_TIMEOUT_S = 2.0
UNAVAILABLE = "BooxiUnavailable"

Check = dict[str, Any]


async def livez(request: web.Request) -> web.Response:
    """The process answers (no dependency checked): for liveness probes."""
    return web.json_response({"status": "ok"})


async def healthz(request: web.Request) -> web.Response:
    """Alive, and the database answers within 2 s."""
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_S), request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as error:
        log.warning("ops.database.failed", extra={"error": _describe(error)})
        return json_error(503, f"the database does not answer ({type(error).__name__})")
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness, from the database alone; see the module docstring."""
    config = request.app[CONFIG]
    try:
        state = await _read_state(request.app[ENGINE], config.sync.merchant_ids, webhooks=False)
    except Exception as error:
        log.warning("ops.database.failed", extra={"error": _describe(error)})
        unknown = {"status": "unknown"}
        checks = {
            "database": {"status": "fail", "error": type(error).__name__},
            "sync": unknown,
            "upstream": unknown,
        }
        return web.json_response({"status": "unready", "checks": checks}, status=503)
    checks = {
        "database": {"status": "ok"},
        "sync": sync_check(state.states, state.pending, utcnow(), config.api.staleness_s),
        "upstream": upstream_check(state.states),
    }
    leadership = request.app.get(POLL_LEADERSHIP)
    if leadership is not None:
        poller: Check = {"status": "ok", "polls": leadership.is_leader}
        checks["poller"] = poller
    degraded = any(check["status"] == "degraded" for check in checks.values())
    return web.json_response({"status": "degraded" if degraded else "ready", "checks": checks})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition of this application's registry (see ``api.metrics``)."""
    app = request.app
    now = utcnow()
    state = _State([], [], None)
    try:
        state = await _read_state(app[ENGINE], app[CONFIG].sync.merchant_ids, webhooks=True)
    except Exception as error:  # still serve the request metrics: they matter most then
        log.warning("ops.database.failed", extra={"error": _describe(error)})
    queues: dict[int, int] | None = None
    horizon = now + dt.timedelta(days=app[CONFIG].sync.horizon_days)
    try:
        queues = await app[READER].run(
            store_queue.queue_sizes, instant_key(now), instant_key(horizon)
        )
    except Exception as error:
        log.warning("ops.database.failed", extra={"error": _describe(error)})
    client = app.get(BOOXI)
    answers = app.get(READY)
    ready = (
        ReadyStats(
            answers.hits,
            answers.misses,
            answers.drops,
            len(answers),
            answers.size,
            answers.waits,
        )
        if answers is not None
        else None
    )
    snapshot = Snapshot(
        now,
        oldest_success_by_store(state.states, state.pending),
        state.latest_webhook_at,
        upstream=client.stats.copy() if client is not None else None,
        budget=client.budget.stats if client is not None else None,
        ready=ready,
        queue_sizes=queues,
    )
    body, content_type = app[METRICS].render(snapshot, request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of every route (``api.openapi``)."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def sync_check(
    states: Sequence[SyncStateRow],
    pending: Sequence[tuple[int, int | None]],
    now: dt.datetime,
    staleness_s: float,
) -> Check:
    """How old the staff calendars the mirror holds are, against ``staleness_s``;
    ``pending``: (staff id, store id) of staff members no poll has tried yet."""
    staff = _staff(states)
    successes = [s.last_success_at for s in staff if s.last_success_at is not None]
    total = len(staff) + len(pending)
    check: Check = {"status": "ok", "staff": total, "staleness_s": staleness_s}
    if not successes:
        return check | {"status": "degraded", "detail": "no staff calendar synced yet"}
    oldest = min(successes)
    age = max(0.0, (now - oldest).total_seconds())
    check |= {"oldest_success_at": _rfc3339(oldest), "age_s": round(age, 1)}
    never = total - len(successes)
    if never:
        check |= {"status": "degraded", "detail": f"{never} staff calendar(s) never synced"}
    elif is_stale(oldest, staleness_s, now):
        check |= {"status": "degraded", "detail": "older than staleness_s"}
    return check


def oldest_success_by_store(
    states: Sequence[SyncStateRow], pending: Sequence[tuple[int, int | None]] = ()
) -> dict[int | None, dt.datetime | None]:
    """Per store, the oldest last success of its staff calendars; None if one never had one
    (``pending``: staff members no poll has tried yet)."""
    oldest: dict[int | None, dt.datetime | None] = {store: None for _, store in pending}
    for state in _staff(states):
        store, success = state.merchant_id, state.last_success_at
        if store in oldest and oldest[store] is None:
            continue
        if success is None:
            oldest[store] = None
        else:
            previous = oldest.get(store)
            oldest[store] = success if previous is None else min(previous, success)
    return oldest


def upstream_check(states: Sequence[SyncStateRow]) -> Check:
    """Whether Booxi answered the latest attempts (reference data, staff calendars)."""
    scopes = [s for s in states if s.kind in ("staff", "reference") and s.last_attempt_at]
    if not scopes:
        return {"status": "unknown", "detail": "no sync attempt yet"}
    failing = [s for s in scopes if unreachable_at_last_attempt(s)]
    successes = [s.last_success_at for s in scopes if s.last_success_at is not None]
    check: Check = {"status": "ok"}
    if successes:
        check["last_success_at"] = _rfc3339(max(successes))
    if failing:
        latest = max(s.last_attempt_at for s in failing if s.last_attempt_at is not None)
        check |= {
            "status": "degraded",
            "detail": "Booxi unreachable at the latest attempts",
            "failing": len(failing),
            "last_failure_at": _rfc3339(latest),
        }
    return check


class Attempts(Protocol):
    """What a sync state tells of its attempts (``SyncStateRow``, and the inspection
    reads' ``StaffSync`` and ``ScopeSync``, which the dashboard shows)."""

    @property
    def last_success_at(self) -> dt.datetime | None: ...
    @property
    def last_attempt_at(self) -> dt.datetime | None: ...
    @property
    def last_error(self) -> str | None: ...


def unreachable_at_last_attempt(state: Attempts) -> bool:
    """Booxi was unreachable at the scope's latest attempt, after its last success."""
    if not (state.last_error or "").startswith(UNAVAILABLE):
        return False
    return state.last_success_at is None or (
        state.last_attempt_at is not None and state.last_attempt_at > state.last_success_at
    )


def _staff(states: Sequence[SyncStateRow]) -> list[SyncStateRow]:
    return [s for s in states if s.kind == "staff"]


@dataclasses.dataclass(frozen=True)
class _State:
    states: list[SyncStateRow]
    pending: list[tuple[int, int | None]]
    latest_webhook_at: dt.datetime | None


async def _read_state(
    engine: AsyncEngine, merchant_ids: Sequence[int], *, webhooks: bool
) -> _State:
    """The sync state of the stores in scope (all if ``merchant_ids`` is empty), and when
    the newest webhook arrived, within the 2 s bound."""

    def read(conn: Connection) -> _State:
        return _State(
            sync_state.list_current_sync_states(conn, merchant_ids),
            sync_state.list_staff_never_attempted(conn, merchant_ids),
            inbox.find_latest_received_at(conn) if webhooks else None,
        )

    async with asyncio.timeout(DATABASE_TIMEOUT_S), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        return await conn.run_sync(read)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]
