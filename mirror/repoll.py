"""Targeted re-polls: Booxi's own calendar event ids, seconds after a webhook or a write.

A booking that arrives by webhook or through a write gets calendar events derived from
it at once (so calendars show it), but only Booxi's calendar knows their ids: until it
is asked, they are provisional. ``Repoller.request(staff_id, start, end)`` asks for a
re-poll of that staff member's calendar over the booking's span (not the whole window:
a burst of webhooks must not turn into a burst of full polls); requests are debounced
(one poll per staff member per ``delay_s``, over the union of the spans asked
meanwhile) and go through the one rate budget at the fill priority.
``settle(staff_id, start, end)`` runs one now over the range a read is about to serve
with provisional events (at most every 30 s).

Errors are logged and left: the regular poll comes anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from typing import Any

from mirror.booxi_errors import BooxiError
from mirror.client import BooxiClient
from mirror.poller import Window, poll_staff_calendar
from storage.errors import MalformedError
from storage.times import parse_instant, utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)

SETTLE_INTERVAL_S = 30.0  # a read re-polls at most this often per staff member...
SETTLE_RETRY_S = 5.0  # ...or this often after a failure
SETTLE_WAIT_S = 3.0  # and waits at most this long for it
MARGIN = dt.timedelta(minutes=1)


def booking_span(booking: dict[str, Any]) -> tuple[dt.datetime, dt.datetime] | None:
    """When a booking takes place (``totalClientTimespan``, else ``startsOn``), or None
    when Booxi's object does not say in a readable way."""
    span = booking.get("totalClientTimespan")
    span = span if isinstance(span, dict) else {}
    try:
        start = parse_instant(str(span.get("start") or booking.get("startsOn")))
        end = parse_instant(span["end"]) if span.get("end") else start
    except (ValueError, TypeError):
        return None
    return start, max(start, end)


class Repoller:
    def __init__(
        self,
        client: BooxiClient,
        writer: Writer,
        *,
        horizon_days: int,
        delay_s: float = 2.0,
    ) -> None:
        self._client = client
        self._writer = writer
        self._horizon_days = horizon_days
        self._delay_s = delay_s
        self._pending: dict[int, asyncio.Task[bool]] = {}
        self._running: dict[int, asyncio.Task[bool]] = {}
        self._settled_at: dict[int, float] = {}
        self._ranges: dict[int, tuple[dt.datetime, dt.datetime]] = {}
        self._tasks: set[asyncio.Task[bool]] = set()
        self._closed = False
        self.polls = 0

    def request(self, staff_id: int, start: dt.datetime, end: dt.datetime) -> None:
        """A re-poll of ``staff_id`` over ``[start, end]`` (a booking's span) within
        ``delay_s``; requests meanwhile widen the range of the one waiting."""
        if self._closed:
            return
        self._settled_at.pop(staff_id, None)  # something new: a read may settle again
        held = self._ranges.get(staff_id)
        self._ranges[staff_id] = (
            (start, end)
            if held is None
            else (
                min(held[0], start),
                max(held[1], end),
            )
        )
        if staff_id in self._pending:
            return
        self._pending[staff_id] = self._track(asyncio.create_task(self._later(staff_id)))

    async def settle(self, staff_id: int, start: dt.datetime, end: dt.datetime) -> bool:
        """Re-poll ``staff_id`` over ``[start, end]`` (as far back as Booxi serves) now,
        for a read about to serve provisional events; whether it succeeded.

        At most once per ``SETTLE_INTERVAL_S`` (``SETTLE_RETRY_S`` after a failure) per
        staff member between two bookings arriving for them (``request``): an event
        Booxi's calendar does not return (further back than it serves) must not make
        every read ask again, nor an outage every read wait. The read waits at most
        ``SETTLE_WAIT_S``; the poll goes on without it.
        """
        moment = time.monotonic()
        if self._closed or moment < self._settled_at.get(staff_id, -math.inf):
            return False
        self._settled_at[staff_id] = moment + SETTLE_INTERVAL_S
        earliest = Window.around(utcnow(), 0).start
        if end <= max(start, earliest):
            return False
        waiting = self._pending.pop(staff_id, None)
        if waiting is not None:
            waiting.cancel()
        try:
            async with asyncio.timeout(SETTLE_WAIT_S):
                await self._finished(staff_id)
                task = self._start(staff_id, Window(max(start, earliest), end))
                done = await asyncio.shield(task)
        except TimeoutError:  # the read goes on without; the poll finishes on its own
            done = False
        if not done:
            self._settled_at[staff_id] = moment + SETTLE_RETRY_S
        return done

    async def drain(self) -> None:
        """Wait until every requested re-poll has run."""
        while tasks := [*self._pending.values(), *self._running.values()]:
            await asyncio.wait(tasks)

    async def close(self) -> None:
        """Cancel every re-poll, waiting or running; none starts afterwards."""
        self._closed = True
        tasks = list(self._tasks)
        self._pending.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _track(self, task: asyncio.Task[bool]) -> asyncio.Task[bool]:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _later(self, staff_id: int) -> bool:
        await asyncio.sleep(self._delay_s)
        if self._pending.get(staff_id) is asyncio.current_task():
            del self._pending[staff_id]
        await self._finished(staff_id)  # one that started before the request may miss it
        asked = self._ranges.pop(staff_id, None)
        if asked is None or self._closed:  # a poll that ran meanwhile took the range
            return False
        start, end = asked
        earliest = Window.around(utcnow(), 0).start
        start, end = max(start - MARGIN, earliest), end + MARGIN
        if end <= start:  # further back than Booxi's calendar serves
            return False
        return await self._start(staff_id, Window(start, end))

    async def _finished(self, staff_id: int) -> None:
        running = self._running.get(staff_id)
        if running is not None:
            await asyncio.wait([running])

    def _start(self, staff_id: int, window: Window) -> asyncio.Task[bool]:
        task = self._track(asyncio.create_task(self._poll(staff_id, window)))
        self._running[staff_id] = task
        task.add_done_callback(lambda _: self._forget(staff_id, task))
        return task

    def _forget(self, staff_id: int, task: asyncio.Task[bool]) -> None:
        if self._running.get(staff_id) is task:
            del self._running[staff_id]

    async def _poll(self, staff_id: int, window: Window) -> bool:
        self.polls += 1
        try:
            await poll_staff_calendar(self._client, self._writer, staff_id, window, source="fill")
        except (BooxiError, MalformedError) as error:
            log.info("repoll.failed", extra={"staff_id": staff_id, "error": type(error).__name__})
            return False
        log.info("repoll.done", extra={"staff_id": staff_id})
        return True
