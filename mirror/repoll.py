"""Targeted re-polls: Booxi's own calendar event ids, seconds after a webhook or a write.

A booking that arrives by webhook or through a write gets calendar events derived from
it at once (so calendars show it), but only Booxi's calendar knows their ids: until it
is asked, they are provisional. ``Repoller.request(staff_id)`` asks for a re-poll of
that staff member's window; requests are debounced (one poll per staff member per
``delay_s``, however many bookings arrived meanwhile) and go through the one rate
budget at the fill priority. ``settle(staff_id)`` runs (or joins) one now, for a read
that is about to serve provisional events.

Errors are logged and left: the regular poll comes anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mirror.booxi_errors import BooxiError
from mirror.client import BooxiClient
from mirror.poller import Window, poll_staff_calendar
from storage.errors import MalformedError
from storage.times import utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)


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
        self.polls = 0

    def request(self, staff_id: int) -> None:
        """A re-poll of ``staff_id`` within ``delay_s`` (nothing new if one is waiting)."""
        if staff_id in self._pending:
            return
        self._pending[staff_id] = asyncio.create_task(self._later(staff_id))

    async def settle(self, staff_id: int) -> bool:
        """Re-poll ``staff_id`` now (joining one in flight); whether it succeeded."""
        waiting = self._pending.pop(staff_id, None)
        if waiting is not None:
            waiting.cancel()
        running = self._running.get(staff_id)
        if running is None:
            running = self._start(staff_id)
        return await asyncio.shield(running)

    async def drain(self) -> None:
        """Wait until every requested re-poll has run."""
        while tasks := [*self._pending.values(), *self._running.values()]:
            await asyncio.wait(tasks)

    async def close(self) -> None:
        tasks = [*self._pending.values(), *self._running.values()]
        self._pending.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _later(self, staff_id: int) -> bool:
        await asyncio.sleep(self._delay_s)
        if self._pending.get(staff_id) is asyncio.current_task():
            del self._pending[staff_id]
        running = self._running.get(staff_id) or self._start(staff_id)
        return await running

    def _start(self, staff_id: int) -> asyncio.Task[bool]:
        task = asyncio.create_task(self._poll(staff_id))
        self._running[staff_id] = task
        task.add_done_callback(lambda _: self._running.pop(staff_id, None))
        return task

    async def _poll(self, staff_id: int) -> bool:
        window = Window.around(utcnow(), self._horizon_days)
        self.polls += 1
        try:
            await poll_staff_calendar(self._client, self._writer, staff_id, window, source="fill")
        except (BooxiError, MalformedError) as error:
            log.info("repoll.failed", extra={"staff_id": staff_id, "error": type(error).__name__})
            return False
        log.info("repoll.done", extra={"staff_id": staff_id})
        return True
