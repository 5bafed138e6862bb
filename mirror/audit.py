"""Drift audit: what the mirror holds of staff calendars against what Booxi says now
(``booxi-mirror audit``).

``audit()`` reads each staff member's calendar window from Booxi (as a poll would, all
event types and includes) and the mirror's rows for that window (a read-only
connection: it writes nothing), then classifies every difference:

- ``missing``: Booxi has the booking or calendar event, the mirror does not.
- ``extra``: the mirror holds a live booking (or an event) in the window that Booxi no
  longer returns; a booking is looked up (``GET /booking/{id}``): cancelled, gone, or
  no longer in the window of Booxi's calendar.
- ``moved_staff``: Booxi has it under another staff member than the mirror.
- ``status_differs``: the statuses differ (whatever the versions).
- ``older_version`` / ``newer_version``: the mirror's ``modifiedOn`` is older / newer
  than Booxi's (newer: a webhook ahead of Booxi's calendar, or a hand edit; a poll
  never rolls a version back, so repair leaves it).
- ``content_differs``: same ``modifiedOn`` and status, different JSON or columns: a row
  edited behind the mirror's back.

Booxi's answer is compared with what the mirror would store from it, personal data the
mirror must not keep (``storage.pii``) stripped alike. A booking is reported once,
under the staff member the mirror files it under (Booxi's for ``missing``); calendar
events of a booking that differs are folded into its difference (``events``), so one
change upstream is one difference. Events are compared by id and staff member only.
``mirror.repair`` fixes what an audit found.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from mirror import answers
from mirror.booxi_errors import BooxiError, BooxiNotFound
from mirror.client import BooxiClient
from mirror.poller import BOOXI_PAST_LIMIT, Window
from mirror.sync import CONCURRENCY, staff_in_scope
from storage import audits, pii, resync
from storage.errors import MalformedError, UserError
from storage.rows import Json, booking_row
from storage.times import instant_key, parse_instant, utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)

KINDS = (
    "missing",
    "extra",
    "moved_staff",
    "status_differs",
    "older_version",
    "newer_version",
    "content_differs",
)
COMPARED = tuple(f for f in resync.BOOKING_FIELDS if f != "raw")
LATE_MARGIN = dt.timedelta(seconds=30)  # a window that began long ago is cut to what Booxi serves
Progress = Callable[[int, int], None]


class AuditError(UserError):
    """The audit could not be made (Booxi unreachable or refusing, nothing in scope)."""


@dataclasses.dataclass
class Difference:
    """One difference. ``mirror``/``booxi`` summarize each side (ids, status, versions:
    never personal data); ``fields`` name what differs in ``content_differs``."""

    kind: str
    object: str  # booking or event
    id: str | int
    staff_id: int | None
    mirror: Json | None
    booxi: Json | None
    fields: list[str] = dataclasses.field(default_factory=list)
    events: list[int] = dataclasses.field(default_factory=list)
    booxi_booking: Json | None = dataclasses.field(default=None, repr=False, compare=False)

    def as_json(self) -> Json:
        fields = dataclasses.fields(self)
        return {f.name: getattr(self, f.name) for f in fields if f.name != "booxi_booking"}


@dataclasses.dataclass
class AuditResult:
    window: Window
    staff: list[int]
    differences: list[Difference]
    looked_up: int = 0
    duration_s: float = 0.0

    def by_kind(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for diff in self.differences:
            counts[diff.kind] += 1
        return {kind: n for kind, n in counts.items() if n}

    def by_staff(self) -> dict[int | None, dict[str, int]]:
        table: dict[int | None, dict[str, int]] = {}
        for diff in self.differences:
            row = table.setdefault(diff.staff_id, {})
            row[diff.kind] = row.get(diff.kind, 0) + 1
        return table

    def as_json(self) -> Json:
        return {
            "window": {"from": _shown(self.window.start), "to": _shown(self.window.end)},
            "staff": self.staff,
            "total": len(self.differences),
            "by_kind": self.by_kind(),
            "by_staff": {str(s): kinds for s, kinds in self.by_staff().items()},
            "differences": [d.as_json() for d in self.differences],
        }


def _counts(differences: Sequence[Difference]) -> dict[int, dict[str, int]]:
    table: dict[int, dict[str, int]] = {}
    for diff in differences:
        if diff.staff_id is not None:
            row = table.setdefault(diff.staff_id, {})
            row[diff.kind] = row.get(diff.kind, 0) + 1
    return table


async def record_audit(
    writer: Writer, found: AuditResult, left: Sequence[Difference] | None = None
) -> None:
    """Keep what an audit found, counted per staff member and kind (``left``: what a
    repair left), for the dashboard's drift summary (``storage.audits``)."""
    await writer.run(
        functools.partial(
            audits.record_audit,
            finished_at=utcnow(),
            window=(found.window.start, found.window.end),
            staff=found.staff,
            found=_counts(found.differences),
            left=None if left is None else _counts(left),
        )
    )


async def audit_scope(
    engine: AsyncEngine, merchant_ids: Sequence[int], staff_ids: Sequence[int]
) -> list[int]:
    """The mirrored staff members to audit; ``AuditError`` if none, or one given is not."""
    found = [s for s, _ in await staff_in_scope(engine, merchant_ids, staff_ids)]
    unknown = sorted(set(staff_ids) - set(found))
    if unknown:
        listed = ", ".join(map(str, unknown))
        where = " in the stores given" if merchant_ids else ""
        raise AuditError(f"staff {listed} not mirrored{where}: run `booxi-mirror sync` first")
    if not found:
        raise AuditError("no staff member in scope: run `booxi-mirror sync` first")
    return found


async def audit(
    client: BooxiClient,
    engine: AsyncEngine,
    staff_ids: Sequence[int],
    window: Window,
    *,
    on_staff: Progress | None = None,
) -> AuditResult:
    """Compare the mirror with Booxi over ``window`` for these staff members; no writes."""
    started = time.perf_counter()
    window = servable(window)
    fetched = await _fetch_calendars(client, staff_ids, window, on_staff)
    booxi_bookings, booxi_events = _index({s: pages for s, (_, pages) in fetched.items()})

    def read(conn: Connection) -> tuple[list[Json], list[Json], dict[str, Json], dict[int, Json]]:
        held: list[Json] = []
        events: list[Json] = []
        for staff_id, (staff_window, _) in fetched.items():  # each as far back as fetched
            start, end = staff_window.keys()
            held += resync.list_window_bookings(conn, [staff_id], start, end)
            events += resync.list_window_events(conn, [staff_id], start, end)
        by_id = resync.list_bookings(conn, booxi_bookings)
        by_id.update({row["booking_id"]: row for row in held})
        return held, events, by_id, resync.list_events(conn, booxi_events)

    async with engine.connect() as conn:
        held, held_events, stored, stored_events = await conn.run_sync(read)
    unexplained = sorted(
        row["booking_id"] for row in held if row["booking_id"] not in booxi_bookings
    )
    looked_up = {booking_id: await _look_up(client, booking_id) for booking_id in unexplained}
    answers = [b for b, _ in booxi_bookings.values()] + [b for b in looked_up.values() if b]
    async with engine.connect() as conn:
        expected = await conn.run_sync(_as_stored, answers)

    found: dict[str, Difference] = {}
    for booking_id, (booking, staff_id) in booxi_bookings.items():
        diff = _compare(booking_id, stored.get(booking_id), booking, expected[booking_id], staff_id)
        if diff is not None:
            found[booking_id] = diff
    for booking_id, answer in looked_up.items():
        row = stored[booking_id]
        if answer is None or answer.get("status") == "Cancelled":
            diff = _difference("extra", booking_id, row, answer, row["staff_id"])
        else:
            diff = _compare(booking_id, row, answer, expected[booking_id], row["staff_id"])
            diff = diff or _difference("extra", booking_id, row, answer, row["staff_id"])
        found[booking_id] = diff
    differences = list(found.values())
    differences += _event_differences(booxi_events, held_events, stored_events, found)
    differences.sort(key=lambda d: (d.staff_id or 0, d.object, KINDS.index(d.kind), str(d.id)))
    result = AuditResult(
        window,
        list(staff_ids),
        differences,
        looked_up=len(looked_up),
        duration_s=round(time.perf_counter() - started, 2),
    )
    log.info(
        "audit.done",
        extra={
            "staff": len(staff_ids),
            "differences": len(differences),
            "kinds": result.by_kind(),
            "looked_up": result.looked_up,
            "duration_s": result.duration_s,
        },
    )
    return result


# ---- fetching ---------------------------------------------------------------------------


def _index(
    pages: dict[int, list[Json]],
) -> tuple[dict[str, tuple[Json, int]], dict[int, tuple[Json, int]]]:
    """Booxi's bookings and calendar events by id, each with the calendar it came in."""
    bookings: dict[str, tuple[Json, int]] = {}
    events: dict[int, tuple[Json, int]] = {}
    for staff_id, staff_pages in pages.items():
        for page in staff_pages:
            for booking in page.get("bookings") or []:
                booking_id = booking.get("bookingId") if isinstance(booking, dict) else None
                if not isinstance(booking_id, str):
                    raise AuditError(f"Booxi sent staff {staff_id} a booking without bookingId")
                bookings.setdefault(booking_id, (booking, staff_id))
            for event in page.get("calendarEvents") or []:
                event_id = event.get("id") if isinstance(event, dict) else None
                if not isinstance(event_id, int):
                    raise AuditError(f"Booxi sent staff {staff_id} a calendar event without id")
                events.setdefault(event_id, (event, staff_id))
    return bookings, events


def servable(window: Window) -> Window:
    """``window``, its start moved up if Booxi would now refuse it (over 7 days back)."""
    earliest = utcnow() - BOOXI_PAST_LIMIT + LATE_MARGIN
    return window if window.start >= earliest else Window(earliest, window.end)


async def _fetch_calendars(
    client: BooxiClient, staff_ids: Sequence[int], window: Window, on_staff: Progress | None
) -> dict[int, tuple[Window, list[Json]]]:
    """Each staff member's calendar pages, with the window fetched: its start moves up
    as the audit goes on, when Booxi would refuse it (as on a large store)."""
    semaphore = asyncio.Semaphore(CONCURRENCY)
    fetched: dict[int, tuple[Window, list[Json]]] = {}
    failed: list[str] = []
    done = 0

    async def fetch(staff_id: int) -> None:
        nonlocal done
        async with semaphore:
            if failed:
                return
            staff_window = servable(window)
            try:
                pages = [
                    page
                    async for page in client.iter_calendar(
                        staff_id, staff_window.start, staff_window.end
                    )
                ]
            except BooxiError as error:
                failed.append(f"reading staff {staff_id}'s calendar: {_describe(error)}")
                return
            fetched[staff_id] = (staff_window, pages)
        done += 1
        if on_staff is not None:
            on_staff(done, len(staff_ids))

    await asyncio.gather(*(fetch(s) for s in staff_ids))
    if failed:
        raise AuditError(f"Booxi failed {failed[0]}")
    return fetched


async def _look_up(client: BooxiClient, booking_id: str) -> Json | None:
    """The booking as Booxi has it now; None when Booxi no longer knows it."""
    try:
        answer = await client.get_booking(booking_id)
    except BooxiNotFound:
        return None
    except BooxiError as error:
        raise AuditError(
            f"Booxi failed looking up booking {booking_id}: {_describe(error)}"
        ) from None
    booking, _ = answers.booking_of(answer)
    if booking is None:
        raise AuditError(f"Booxi answered GET /booking/{booking_id} without a booking")
    return booking


def _as_stored(conn: Connection, answers: Sequence[Json]) -> dict[str, Json]:
    """The rows a poll would store for Booxi's bookings (blocked personal data stripped)."""
    try:
        rows = [booking_row(b, "poll", utcnow()) for b in answers]
    except MalformedError as error:
        raise AuditError(f"Booxi sent a booking the mirror cannot store: {error}") from None
    pii.strip_blocked_booking_rows(conn, rows)
    return {row["booking_id"]: row for row in rows}


# ---- classifying ------------------------------------------------------------------------


def _compare(
    booking_id: str, row: Json | None, booking: Json, expected: Json, staff_id: int
) -> Difference | None:
    """How the stored ``row`` differs from Booxi's ``booking`` (stored as ``expected``)."""
    if row is None:
        return _difference("missing", booking_id, None, booking, expected["staff_id"] or staff_id)
    if row["staff_id"] != expected["staff_id"]:
        kind = "moved_staff"
    elif row["status"] != expected["status"]:
        kind = "status_differs"
    elif row["modified_on"] < expected["modified_on"]:
        kind = "older_version"
    elif row["modified_on"] > expected["modified_on"]:
        kind = "newer_version"
    else:
        fields = _changed_fields(row, expected)
        if not fields:
            return None
        diff = _difference("content_differs", booking_id, row, booking, row["staff_id"])
        diff.fields = fields
        return diff
    return _difference(kind, booking_id, row, booking, row["staff_id"])


def _changed_fields(row: Json, expected: Json) -> list[str]:
    """Top-level JSON keys and columns that differ (names only: values can be personal)."""
    names = {name for name in COMPARED if row[name] != expected[name]}
    held, wanted = json.loads(row["raw"]), json.loads(expected["raw"])
    if isinstance(held, dict) and isinstance(wanted, dict):
        names |= {k for k in held.keys() | wanted.keys() if held.get(k) != wanted.get(k)}
    elif held != wanted:
        names.add("raw")
    return sorted(names)


def _difference(
    kind: str, booking_id: str, row: Json | None, booking: Json | None, staff_id: Any
) -> Difference:
    return Difference(
        kind=kind,
        object="booking",
        id=booking_id,
        staff_id=staff_id if isinstance(staff_id, int) else None,
        mirror=_row_summary(row) if row is not None else None,
        booxi=_booking_summary(booking) if booking is not None else None,
        booxi_booking=booking,
    )


def _event_differences(
    booxi_events: dict[int, tuple[Json, int]],
    held: list[Json],
    stored: dict[int, Json],
    bookings: dict[str, Difference],
) -> list[Difference]:
    found: list[Difference] = []

    def report(
        kind: str, event_id: int, staff_id: int, mine: Json | None, theirs: Json | None
    ) -> None:
        booking_id = (theirs or {}).get("booking_id") or (mine or {}).get("booking_id")
        if booking_id in bookings:  # one change upstream, one difference
            bookings[booking_id].events.append(event_id)
            return
        found.append(Difference(kind, "event", event_id, staff_id, mine, theirs))

    for event_id, (event, staff_id) in sorted(booxi_events.items()):
        row = stored.get(event_id)
        theirs = {
            "staff_id": staff_id,
            "booking_id": event.get("bookingId"),
            "type": event.get("type"),
        }
        if row is None:
            report("missing", event_id, staff_id, None, theirs)
        elif row["staff_id"] != staff_id:
            report("moved_staff", event_id, row["staff_id"], _event_summary(row), theirs)
    for row in sorted(held, key=lambda r: r["id"]):
        if row["id"] not in booxi_events:
            report("extra", row["id"], row["staff_id"], _event_summary(row), None)
    return found


def _row_summary(row: Json) -> Json:
    return {
        "staff_id": row["staff_id"],
        "status": row["status"],
        "modified_on": _shown(row["modified_on"]),
        "starts_on": _shown(row["starts_on"]),
    }


def _booking_summary(booking: Json) -> Json:
    return {
        "staff_id": booking.get("staffId"),
        "status": booking.get("status"),
        "modified_on": _shown(booking.get("modifiedOn")),
        "starts_on": _shown(booking.get("startsOn")),
    }


def _event_summary(row: Json) -> Json:
    summary = {"staff_id": row["staff_id"], "booking_id": row["booking_id"], "type": row["type"]}
    if row["provisional"]:
        summary["provisional"] = True
    return summary


def _shown(value: object) -> str | None:
    """An instant as Booxi writes it (``YYYY-MM-DDTHH:MM:SSZ``), whatever form it came in."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str):
        try:
            return _shown(parse_instant(instant_key(value)))
        except ValueError:
            return value
    return None


def _describe(error: BooxiError) -> str:
    return f"{type(error).__name__}: {error}"
