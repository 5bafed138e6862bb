"""What drops ready answers (``api.ready``): this process's writes, applied after each
commit and before the writes' callers resume (``writes``), and what other processes
change, followed (``follow``): on SQLite through the change log's ``seq`` (a ``Probe``
before every lookup and every ``FOLLOW_INTERVAL_S``); on PostgreSQL through the change
feed (``LISTEN``/``NOTIFY``, ``storage.changes.ChangeFeed``), answers kept only while it
listens. Both prune the change log every ``PRUNE_EVERY_S``. Each is a ``cleanup_ctx``
of the application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ready import READY, ReadyAnswers
from storage import changes
from storage.changes import Change
from storage.writer import Writer

log = logging.getLogger(__name__)

FOLLOW_INTERVAL_S = 0.5
PRUNE_EVERY_S = 60.0
# PostgreSQL: rows are pruned by age (a feed reads a transaction's within a second of its
# commit, or has lost its connection and dropped everything); reconnecting backs off
# from the first to the longest wait, each with jitter (replicas that lost the server
# together do not come back together).
PRUNE_AFTER_S = 300.0
RECONNECT_S = (0.1, 5.0)
_STEADY_S = 10.0  # a feed that listened this long starts its backoff afresh when lost


async def writes(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: apply what this process's writer changed after each commit,
    before the writes' callers resume (``Writer.after_commit``)."""
    from api.keys import ENGINE, WRITER

    ready_answers, writer = app[READY], app[WRITER]
    collect: Callable[[Connection], Any]
    deliver: Callable[[Any], None]
    if app[ENGINE].dialect.name == "postgresql":
        collect = changes.transaction_changes

        def deliver(found: tuple[str | None, list[Change]] | None) -> None:
            if found is None:
                ready_answers.clear()
            elif found[0] is not None and found[1]:
                ready_answers.apply_transactions({found[0]: found[1]})

    else:

        def collect(conn: Connection) -> list[Change]:
            return changes.changes_since(conn.connection, ready_answers.applied_seq)

        def deliver(found: list[Change] | None) -> None:
            if found is None:
                ready_answers.clear()
            else:
                ready_answers.apply(found)

    remove = writer.after_commit(collect, deliver)
    yield
    remove()  # the writer may outlive this application (tests start several)


async def follow(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: follow what other processes change (SQLite: the change log's
    ``seq``, at every lookup and every ``FOLLOW_INTERVAL_S``, so that erased data leaves
    the memory within that even when nobody reads; PostgreSQL: the change feed); prune
    the log every ``PRUNE_EVERY_S``."""
    from api.keys import ENGINE, WRITER

    if app[ENGINE].dialect.name == "postgresql":
        app[READY].enabled = False  # until the feed listens
        tasks = [
            asyncio.create_task(_follow_feed(app[READY], app[ENGINE]), name="ready-feed"),
            asyncio.create_task(
                _prune(app[WRITER], lambda conn: changes.prune_older(conn, PRUNE_AFTER_S)),
                name="ready-prune",
            ),
        ]
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return
    async with contextlib.aclosing(_follow_probe(app)) as following:
        async for _ in following:
            yield


async def _follow_probe(app: web.Application) -> AsyncGenerator[None, None]:
    """SQLite: start where the change log is now; apply what other processes change at
    every lookup and every ``FOLLOW_INTERVAL_S``; prune the log every ``PRUNE_EVERY_S``."""
    from api.keys import READER, WRITER

    ready_answers = app[READY]
    try:
        probe = changes.Probe(app[READER].path)
        ready_answers.applied_seq = max(ready_answers.applied_seq, probe.last_seq())
    except Exception:  # no database yet (``/readyz`` says so): serve without ready answers
        log.warning("ready.disabled", exc_info=True)
        ready_answers.enabled = False
        yield
        return
    ready_answers.probe = probe
    writer = app[WRITER]

    async def run() -> None:
        loop = asyncio.get_running_loop()
        pruned = loop.time()
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL_S)
            ready_answers.refresh()
            if loop.time() - pruned > PRUNE_EVERY_S:
                pruned = loop.time()
                try:
                    await writer.run(lambda conn: changes.prune(conn.connection))
                except Exception:  # the next round tries again
                    log.warning("ready.prune_failed", exc_info=True)

    task = asyncio.create_task(run(), name="ready-answers-follow")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    ready_answers.probe = None
    probe.close()


async def _follow_feed(ready_answers: ReadyAnswers, engine: AsyncEngine) -> None:
    """PostgreSQL: keep answers only while the change feed listens; apply each committed
    transaction it hands over; when it is lost (or anything fails), drop everything and
    stop keeping until it listens again. Connecting backs off while it keeps failing,
    and so does listening again after a feed lost soon after it started."""
    loop = asyncio.get_running_loop()
    wait = RECONNECT_S[0]
    while True:
        feed = changes.ChangeFeed(engine)
        try:
            await feed.open()
        except Exception as error:  # the server is down or refuses: try again later
            await feed.close()
            log.warning(
                "ready.feed_unavailable",
                extra={"error": type(error).__name__, "retry_in_s": round(wait, 2)},
            )
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))
            wait = min(wait * 2, RECONNECT_S[1])
            continue
        ready_answers.clear()  # what changed while nobody listened
        ready_answers.enabled = True
        listened = loop.time()
        log.info("ready.feed_listening")
        try:
            while True:
                ready_answers.apply_transactions(await feed.next(FOLLOW_INTERVAL_S))
        except changes.ChangeFeedLostError as error:
            log.warning("ready.feed_lost", extra={"error": str(error)})
        except Exception:  # whatever it was, changes may now go unseen
            log.exception("ready.feed_failed")
        finally:
            ready_answers.enabled = False
            ready_answers.clear()
            await feed.close()
        if loop.time() - listened > _STEADY_S:
            wait = RECONNECT_S[0]
        await asyncio.sleep(wait * random.uniform(0.5, 1.0))
        wait = min(wait * 2, RECONNECT_S[1])


async def _prune(writer: Writer, prune: Callable[[Connection], None]) -> None:
    while True:
        await asyncio.sleep(PRUNE_EVERY_S)
        try:
            await writer.run(prune)
        except Exception:  # the next round tries again
            log.warning("ready.prune_failed", exc_info=True)
