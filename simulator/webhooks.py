"""Webhook delivery, as Booxi's Event API does it, with faults on demand.

Every change becomes one event ``{"eventId", "eventType", "createdOn", "content"}``
delivered by POST to each configured URL. Choices where Booxi is silent:

- Authentication: ``Authorization: Bearer <webhook secret>`` when a shared secret is
  set; with a signing secret, Standard Webhooks headers ``webhook-id`` (the event id),
  ``webhook-timestamp`` and ``webhook-signature`` (HMAC-SHA256, ``v1,<base64>``),
  signed afresh for every attempt.
- Deliveries run concurrently, so order is not guaranteed (nor is it by Booxi).
- A delivery fails on a connection error, a timeout (10 s) or any non-2xx answer, and
  is retried up to 6 attempts in all, after 0.5 s, 1 s, 2 s, 4 s and 8 s (with
  jitter); then it is given up and counted.
- A duplicate is the same event, same id and body, delivered a second time.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import random
import uuid
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from simulator.faults import Faults
from simulator.timeutil import fmt, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
FIRST_RETRY_S = 0.5
TIMEOUT_S = 10.0
MAX_IN_FLIGHT = 32
REORDER_BATCH = 16
REORDER_WINDOW_S = 0.05


class WebhookDispatcher:
    """Queues events and delivers them to every URL in the background."""

    def __init__(
        self,
        urls: tuple[str, ...],
        *,
        faults: Faults,
        rng: random.Random,
        secret: str | None = None,
        signing_secret: str | None = None,
    ) -> None:
        self.urls = urls
        self._faults = faults
        self._rng = rng
        self._secret = secret
        self._signer = Webhook(signing_secret) if signing_secret else None
        self._queue: asyncio.Queue[tuple[dict[str, Any], bytes, str]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._session: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.stats = collections.Counter[str]()
        self.log: collections.deque[dict[str, Any]] = collections.deque(maxlen=2000)

    # ---- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        self._worker = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def close(self) -> None:
        tasks = [task for task in [self._worker, *self._tasks] if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def drain(self) -> None:
        """Wait until every queued delivery is done or given up."""
        await self._idle.wait()

    @property
    def pending(self) -> int:
        return self._pending

    # ---- publishing ------------------------------------------------------------
    def publish(self, event_type: str, content: dict[str, Any]) -> None:
        """Snapshot one change as an event and queue it for every URL."""
        event = {
            "eventId": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            "eventType": event_type,
            "createdOn": fmt(utcnow()),
            "content": content,
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        self.stats["published"] += 1
        for url in self.urls:
            if self._rng.random() < self._faults.webhook_drop_rate:
                self.stats["dropped"] += 1
                self._record(event, url, 0, None, "dropped")
                continue
            copies = 2 if self._rng.random() < self._faults.webhook_duplicate_rate else 1
            self.stats["duplicated"] += copies - 1
            for _ in range(copies):
                self._pending += 1
                self._idle.clear()
                self._queue.put_nowait((event, body, url))

    # ---- delivery --------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._faults.webhook_reorder:
                await asyncio.sleep(REORDER_WINDOW_S)
                while len(batch) < REORDER_BATCH and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                self._rng.shuffle(batch)
            for event, body, url in batch:
                task = asyncio.create_task(self._deliver(event, body, url))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: dict[str, Any], body: bytes, url: str) -> None:
        try:
            faults = self._faults
            if faults.webhook_delay_ms and self._rng.random() < faults.webhook_delay_rate:
                await asyncio.sleep(faults.webhook_delay_ms / 1000)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                status = await self._attempt(event, body, url)
                if status is not None and 200 <= status < 300:
                    self.stats["delivered"] += 1
                    self._record(event, url, attempt, status, "delivered")
                    return
                self.stats["failed_attempts"] += 1
                outcome = "retrying" if attempt < MAX_ATTEMPTS else "gave_up"
                self._record(event, url, attempt, status, outcome)
                if attempt < MAX_ATTEMPTS:
                    delay = FIRST_RETRY_S * 2 ** (attempt - 1)
                    await asyncio.sleep(delay * self._rng.uniform(0.8, 1.2))
            self.stats["gave_up"] += 1
            log.warning("webhook.gave_up", extra={"event_id": event["eventId"], "url": url})
        finally:
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()

    async def _attempt(self, event: dict[str, Any], body: bytes, url: str) -> int | None:
        assert self._session is not None, "start() the dispatcher first"
        headers = {"Content-Type": "application/json", "User-Agent": "booxi-simulator"}
        if self._secret:
            headers["Authorization"] = f"Bearer {self._secret}"
        if self._signer is not None:
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            headers["webhook-id"] = event["eventId"]
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = self._signer.sign(event["eventId"], now, body.decode())
        try:
            async with self._slots, self._session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError) as error:
            log.info(
                "webhook.attempt_failed",
                extra={"event_id": event["eventId"], "url": url, "error": type(error).__name__},
            )
            return None

    def _record(
        self, event: dict[str, Any], url: str, attempt: int, status: int | None, outcome: str
    ) -> None:
        self.log.append(
            {
                "eventId": event["eventId"],
                "eventType": event["eventType"],
                "url": url,
                "attempt": attempt,
                "status": status,
                "outcome": outcome,
                "at": fmt(utcnow()),
            }
        )
