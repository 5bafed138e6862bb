"""What the dashboard's pages show, read from the mirror's database through the app's
reader (``storage.inspection`` and ``storage.reads``, as the CLI and the API read it),
never through HTTP calls to the mirror itself, never from Booxi.

Every function takes the signed-in key's ``Principal`` and shows only its stores. A
client's name is shown only to a key with ``retain_pii = true``; a key without it sees
client ids only. E-mail addresses, phone numbers and notes are never shown.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.auth import Principal
from api.freshness import Freshness
from api.ops import unreachable_at_last_attempt
from mirror.config import Config
from storage import audits, inspection, reads
from storage.read_connection import ReadConnection
from storage.times import instant_key, parse_instant

Json = dict[str, Any]
INBOX_LIMIT = 20
WEEK_TYPES = ("Appointment", "GroupEvent", "TimeSlot")
WEEK_INCLUDES = ("Appointment", "GroupEvent", "Service")
PAGE = 500
HISTORY_LIMIT = 200


def store_scope(caller: Principal, config: Config) -> tuple[int, ...] | None:
    """The stores to show: the key's, or for an every-store key those of ``[sync]
    merchant_ids`` (None: every store)."""
    if caller.merchant_ids is None:
        return tuple(config.sync.merchant_ids) or None
    return tuple(sorted(caller.merchant_ids))


# ---- freshness --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StaffRow:
    sync: inspection.StaffSync
    state: str  # ok, stale, failing, never
    age_s: float | None
    unreachable: bool


@dataclasses.dataclass(frozen=True)
class Overview:
    checked_at: dt.datetime
    staleness_s: float
    staff: list[StaffRow]
    reference: inspection.ScopeSync | None
    latest_webhook_at: dt.datetime | None
    failures: list[inspection.InboxRow]
    audit: audits.AuditSummary | None

    @property
    def webhook_lag_s(self) -> float | None:
        return _age(self.checked_at, self.latest_webhook_at)

    @property
    def reachability(self) -> str:
        """``unreachable`` when the latest attempt of the reference data or of a staff
        calendar shown found Booxi unreachable (as ``GET /readyz``'s ``upstream``),
        ``unknown`` before any attempt, else ``ok``."""
        scopes: list[Any] = [row.sync for row in self.staff if row.sync.last_attempt_at]
        if self.reference is not None and self.reference.last_attempt_at is not None:
            scopes.append(self.reference)
        if not scopes:
            return "unknown"
        return "unreachable" if any(unreachable_at_last_attempt(s) for s in scopes) else "ok"

    @property
    def stores(self) -> list[tuple[int, str]]:
        found = {r.sync.merchant_id: r.sync.merchant_name for r in self.staff}
        return [(m, n) for m, n in found.items() if m is not None]

    def staff_of(self, merchant_id: int) -> list[StaffRow]:
        return [r for r in self.staff if r.sync.merchant_id == merchant_id]


def _age(now: dt.datetime, moment: dt.datetime | None) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def _state(sync: inspection.StaffSync, staleness_s: float, now: dt.datetime) -> str:
    """As ``booxi-mirror status``: the read API's staleness rule (``Freshness.stale``)."""
    if sync.last_success_at is None:
        return "never"
    if sync.consecutive_failures:
        return "failing"
    stale = Freshness(sync.last_success_at).stale(staleness_s, now)
    return "stale" if stale else "ok"


def read_overview(
    conn: ReadConnection,
    stores: Sequence[int] | None,
    staleness_s: float,
    now: dt.datetime,
    *,
    every_store: bool = False,
) -> Overview:
    """Freshness of the stores' staff calendars, the reference data, the webhook lag, the
    latest inbox events not applied and the last audit's findings, in one snapshot. A key
    of ``every_store`` sees every inbox failure, those of stores outside ``[sync]
    merchant_ids`` too (an event of a store the mirror does not serve is one)."""
    syncs = [] if stores == () else inspection.list_staff_syncs(conn, stores or ())
    staff = [
        StaffRow(
            sync,
            _state(sync, staleness_s, now),
            _age(now, sync.last_success_at),
            unreachable_at_last_attempt(sync),
        )
        for sync in syncs
    ]
    return Overview(
        checked_at=now,
        staleness_s=staleness_s,
        staff=staff,
        reference=inspection.find_scope_sync(conn, "reference"),
        latest_webhook_at=inspection.find_latest_webhook_at(conn),
        failures=inspection.list_inbox_failures(conn, None if every_store else stores, INBOX_LIMIT),
        audit=None if stores == () else audits.find_last_audit(conn, stores),
    )


# ---- a staff member's week ---------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Entry:
    """One calendar event of the week, in the store's time zone."""

    start: dt.datetime
    end: dt.datetime
    kind: str
    booking_id: str | None
    status: str
    services: str
    client_id: int | None
    client_name: str


@dataclasses.dataclass(frozen=True)
class Week:
    staff_id: int
    staff_name: str
    merchant_id: int | None
    merchant_name: str
    zone: str
    monday: dt.date
    days: list[tuple[dt.date, list[Entry]]]
    synced_at: dt.datetime | None
    stale: bool


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def zone_of(name: object) -> ZoneInfo:
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _loads(raw: str | None) -> Json:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def client_of(booking: Json, retain_pii: bool) -> tuple[int | None, str]:
    """The booking's client id and, for a key that may see it, name."""
    found = booking.get("client")
    client: Json = found if isinstance(found, dict) else {}
    ident = client.get("id") if isinstance(client.get("id"), int) else booking.get("clientId")
    ident = ident if isinstance(ident, int) and not isinstance(ident, bool) else None
    name = inspection.person_name(client) if retain_pii else ""
    return ident, name


def services_of(booking: Json) -> str:
    found = booking.get("items")
    items: list[Any] = found if isinstance(found, list) else []
    names = [i.get("serviceName") for i in items if isinstance(i, dict)]
    return ", ".join(n for n in names if isinstance(n, str) and n)


def read_week(
    conn: ReadConnection,
    staff_id: int,
    monday: dt.date,
    caller: Principal,
    staleness_s: float,
    now: dt.datetime,
) -> Week | None:
    """The staff member's calendar over the week from ``monday`` (in the store's time
    zone), as the mirror holds it; None when the key does not see them (or the mirror
    does not know them)."""
    merchant = reads.staff_merchant(conn, staff_id)
    if merchant is False or not caller.sees(merchant if isinstance(merchant, int) else None):
        return None
    merchant_id = merchant if isinstance(merchant, int) else None
    staff_row = conn.execute("SELECT raw FROM staff WHERE id = ?", (staff_id,)).fetchone()
    merchant_row = conn.execute("SELECT raw FROM merchant WHERE id = ?", (merchant_id,)).fetchone()
    merchant_raw = _loads(merchant_row[0] if merchant_row else None)
    zone = zone_of(merchant_raw.get("timeZone"))
    first = dt.datetime.combine(monday, dt.time(), zone)
    last = first + dt.timedelta(days=7)
    start, end = instant_key(first.astimezone(dt.UTC)), instant_key(last.astimezone(dt.UTC))
    events: list[str] = []
    bookings: dict[str, Json] = {}
    after: tuple[str, int] | None = None
    while True:
        page = reads.calendar_page(
            conn, staff_id, start, end, WEEK_TYPES, WEEK_INCLUDES, after, PAGE
        )
        events += page.events
        for raw in page.bookings:
            booking = _loads(raw)
            if isinstance(booking.get("bookingId"), str):
                bookings[booking["bookingId"]] = booking
        if page.last is None:
            break
        after = page.last
    days: dict[dt.date, list[Entry]] = {monday + dt.timedelta(days=i): [] for i in range(7)}
    for raw in events:
        event = _loads(raw)
        try:
            begins = parse_instant(str(event.get("start"))).astimezone(zone)
            ends = parse_instant(str(event.get("end"))).astimezone(zone)
        except ValueError:
            continue
        booking = bookings.get(str(event.get("bookingId")), {})
        client_id, client_name = client_of(booking, caller.retain_pii)
        entry = Entry(
            begins,
            ends,
            str(event.get("type") or ""),
            booking.get("bookingId") if booking else None,
            str(booking.get("status") or ""),
            services_of(booking),
            client_id,
            client_name,
        )
        if begins.date() in days:
            days[begins.date()].append(entry)
    sync = reads.staff_sync(conn, [staff_id])
    freshness = Freshness.of_sync_rows(sync)
    return Week(
        staff_id=staff_id,
        staff_name=inspection.person_name(_loads(staff_row[0] if staff_row else None)),
        merchant_id=merchant_id,
        merchant_name=str(merchant_raw.get("name") or ""),
        zone=str(zone),
        monday=monday,
        days=sorted(days.items()),
        synced_at=freshness.synced_at,
        stale=freshness.stale(staleness_s, now),
    )


# ---- a client's history ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Visit:
    booking_id: str
    starts_on: str
    status: str
    services: str
    staff_id: int | None
    staff_name: str
    merchant_id: int | None


@dataclasses.dataclass(frozen=True)
class History:
    client_id: int
    client_name: str
    visits: list[Visit]
    more: bool


def read_history(conn: ReadConnection, client_id: int, caller: Principal) -> History | None:
    """The client's bookings at the key's stores, newest first, as the mirror holds them
    (no first-demand fill: ``GET /booking`` does that); None when there is none."""
    query = reads.HistoryQuery(client_id, None, None, None, (), True)
    page = reads.history_page(conn, query, caller.merchant_ids, None, HISTORY_LIMIT)
    if not page.bookings:
        return None
    staff = {s.get("id"): inspection.person_name(s) for s in map(_loads, page.staff)}
    name = ""
    visits = []
    for raw in page.bookings:
        booking = _loads(raw)
        name = name or client_of(booking, caller.retain_pii)[1]
        staff_id = booking.get("staffId") if isinstance(booking.get("staffId"), int) else None
        visits.append(
            Visit(
                booking_id=str(booking.get("bookingId") or ""),
                starts_on=str(booking.get("startsOn") or ""),
                status=str(booking.get("status") or ""),
                services=services_of(booking),
                staff_id=staff_id,
                staff_name=staff.get(staff_id, "") if staff_id else "",
                merchant_id=booking.get("merchantId"),
            )
        )
    return History(client_id, name, visits, page.last is not None)


def shown_time(text: str, zone: ZoneInfo | None = None) -> str:
    """An instant as stored, shown ``YYYY-MM-DD HH:MM`` and its zone (UTC by default)."""
    try:
        moment = parse_instant(text)
    except ValueError:
        return text
    if zone is None:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M ") + str(zone)
