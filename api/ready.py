"""Ready answers: the encoded body of recent read answers, kept in memory, dropped
exactly when their data changes.

A read handler asks ``lookup(request)`` first: a hit costs the key's check (done by the
middleware), one dictionary lookup and the write of the bytes. On a miss it builds its
answer as before and hands it to ``keep(request, response, freshness, tags)``, naming what
the answer was built from as ``Tag``s (the same vocabulary as ``storage.changes``:
``staff:12`` over a range of instants, ``client:5``, ``booking:…``, ``ref``…).

- **Key**: the route's path, the query string as sent, and what the key may see (its
  stores, whether it keeps personal data, its kind). Two keys of the same stores share
  answers.
- **Bound**: by bytes (``[api] ready_answers_mb``): the bodies and an estimate of what
  each entry costs besides (key, tags, index); the least recently used go first.
- **Invalidation**: every change the database records (``storage.changes``) drops the
  answers one of whose tags it names, where ranges overlap. Changes made by this
  process's writer are applied after their commit and before the writes' callers
  resume (so a write's answer, and any read after it, sees the change). Changes made by
  other processes: on SQLite (a CLI command beside ``serve``) they are found before
  every lookup (the log's last ``seq``, one lookup of a few microseconds, against the
  last one applied) and every half second; on PostgreSQL (other replicas, CLI
  commands) each committed transaction is notified (``storage.changes.ChangeFeed``) and
  its rows applied at once, well within a second. Erased or expired personal data
  leaves the memory with the rows: erasure and retention delete rows, and the
  deletions are changes like any other.
- **Lost feed** (PostgreSQL): while the notifications' connection is down, changes may
  go unseen, so everything is dropped and nothing is kept until it listens again
  (reconnecting with backoff); its silence is checked every half second. How changes
  reach the store: ``api.invalidation``.
- **Races**: a read that started before a change was applied and finishes after it is
  not kept if the change names one of its tags (``since``: the generation the read
  started at).
- **One build**: concurrent misses of one answer build it once; the others wait for
  it (``lookup``).
- Only complete answers are kept: a fill that could not vouch for everything, partial
  coverage, provisional event ids, 304s and errors are not.

Headers are computed again on every hit (``Age`` grows; ``Cache-Status`` turns ``stale``
when the sync state ages), from the freshness kept with the body; a fill's first answer
says ``fwd=uri-miss; stored``, the kept copy says ``hit``, as an uncached read would.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence

from aiohttp import web

from api.auth import principal
from api.conditional import respond
from api.freshness import Freshness
from api.keys import CONFIG
from storage.changes import Change, Probe

log = logging.getLogger(__name__)

# Transactions applied, remembered so that the feed's notice of this process's own
# (applied already after its commit) is not applied twice.
_APPLIED_TXS = 10_000
# Changes remembered for reads in flight (a read that started before the oldest one
# remembered does not keep its answer): a count, not a number of commits, since one poll
# commit may carry hundreds.
_RECENT_CHANGES = 5_000
_SINCE = web.RequestKey("ready_since", int)
_KEY = web.RequestKey("ready_key", tuple)
BUILDS = web.RequestKey("ready_builds", tuple)  # the key of the answer this read builds
_WAITS = 3  # builds of one answer a read waits for before it builds its own


@dataclasses.dataclass(frozen=True, slots=True)
class Tag:
    name: str
    lo: str | None = None
    hi: str | None = None


@dataclasses.dataclass(slots=True)
class Ready:
    body: bytes
    etag: str
    freshness: Freshness
    tags: tuple[Tag, ...]
    # the headers last sent, and the (whole seconds of age, stale) they were made for
    _shown: tuple[tuple[int, bool], dict[str, str]] | None = None

    def headers(self, staleness_s: float) -> dict[str, str]:
        """The freshness headers of now and the ``ETag``; made again only when ``Age``
        or staleness would change (a hit within the same second reuses them)."""
        synced_at = self.freshness.synced_at
        now = time.time()
        age = now - synced_at.timestamp() if synced_at is not None else 0.0
        when = (int(age), age > staleness_s)
        shown = self._shown
        if shown is None or shown[0] != when:
            headers = self.freshness.headers(staleness_s, dt.datetime.fromtimestamp(now, dt.UTC))
            headers["ETag"] = self.etag
            self._shown = shown = (when, headers)
        return shown[1]


def _overlap(a_lo: str | None, a_hi: str | None, b_lo: str | None, b_hi: str | None) -> bool:
    if a_lo is None or a_hi is None or b_lo is None or b_hi is None:
        return True
    return a_lo <= b_hi and b_lo <= a_hi


class ReadyAnswers:
    """The store of ready answers (one per application)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: collections.OrderedDict[Hashable, Ready] = collections.OrderedDict()
        self._by_tag: dict[str, set[Hashable]] = {}
        self._bytes = 0
        self._generation = 0
        self._recent: collections.deque[tuple[int, tuple[Change, ...] | None]] = collections.deque()
        self._recent_changes = 0
        self.applied_seq = 0
        self._applied_txs: dict[str, None] = {}
        self.probe: Probe | None = None
        self.enabled = True
        self.hits = 0
        self.misses = 0
        self.drops = 0
        self.waits = 0  # misses that waited for another read building the same answer
        # answers being built, by key: done when their builder's read ends
        self.building: dict[Hashable, asyncio.Future[None]] = {}

    # ---- reading ---------------------------------------------------------------------
    @property
    def generation(self) -> int:
        return self._generation

    def get(self, key: Hashable) -> Ready | None:
        """The answer kept under ``key`` (then the most recently used), or None."""
        ready = self._entries.get(key)
        if ready is not None:
            self._entries.move_to_end(key)
        return ready

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes held: the bodies, and an estimate of what keeping each costs besides."""
        return self._bytes

    def bodies(self) -> Iterable[bytes]:
        """Every body held (a debug hook: tests look for erased data in them)."""
        return [ready.body for ready in self._entries.values()]

    # ---- keeping ---------------------------------------------------------------------
    def put(self, key: Hashable, ready: Ready, since: int) -> bool:
        """Keep ``ready`` unless a change applied after generation ``since`` names one of
        its tags (its data may have changed under it), it is too large to keep, or
        nothing is kept now (``enabled`` off: on PostgreSQL, while the change feed does
        not listen)."""
        size = _cost(ready)
        if size > self.max_bytes // 8 or not self.enabled:
            return False
        if since != self._generation and self._changed_since(since, ready.tags):
            return False
        self._remove(key)
        self._entries[key] = ready
        self._bytes += size
        for tag in ready.tags:
            self._by_tag.setdefault(tag.name, set()).add(key)
        while self._bytes > self.max_bytes and self._entries:
            self._remove(next(iter(self._entries)))
        return True

    def _changed_since(self, since: int, tags: Sequence[Tag]) -> bool:
        if not self._recent or self._recent[0][0] > since + 1:
            return True  # more changed than is remembered: assume the worst
        for generation, changes in self._recent:
            if generation <= since:
                continue
            if changes is None or any(_names(change, tags) for change in changes):
                return True
        return False

    def _remove(self, key: Hashable) -> None:
        ready = self._entries.pop(key, None)
        if ready is None:
            return
        self._bytes -= _cost(ready)
        for tag in ready.tags:
            keys = self._by_tag.get(tag.name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag.name]

    # ---- dropping --------------------------------------------------------------------
    def refresh(self) -> None:
        """Apply what other connections committed since the last look (a CLI command
        beside ``serve``; this process's own writer delivers its changes itself)."""
        if self.probe is None:
            return
        try:
            if self.probe.last_seq() > self.applied_seq:
                self.apply(self.probe.since(self.applied_seq))
        except Exception:  # cannot tell what changed: keep nothing
            log.warning("ready.refresh_failed", exc_info=True)
            self.clear()

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply the change log's rows after ``applied_seq`` (rows at or below it were
        applied already); a gap (rows pruned before this process read them) drops
        everything."""
        fresh = [c for c in changes if c.seq > self.applied_seq]
        if not fresh:
            return
        if self.applied_seq and fresh[0].seq != self.applied_seq + 1:
            self.clear()
        else:
            self._drop(fresh)
        self.applied_seq = fresh[-1].seq

    def apply_transactions(self, found: Mapping[str, Sequence[Change]]) -> None:
        """PostgreSQL: apply committed transactions' rows, by transaction id (from this
        process's writer, or from the change feed, which brings this process's own as
        well: each is applied once). A notified transaction whose rows are gone (pruned
        before they were read) drops everything."""
        fresh = [(tx, rows) for tx, rows in found.items() if tx not in self._applied_txs]
        if not fresh:
            return
        for tx, _ in fresh:
            self._applied_txs[tx] = None
        while len(self._applied_txs) > _APPLIED_TXS:
            del self._applied_txs[next(iter(self._applied_txs))]
        if any(not rows for _, rows in fresh):
            self.clear()
        else:
            self._drop([change for _, rows in fresh for change in rows])

    def clear(self) -> None:
        """Drop everything (and make reads in flight not keep their answers)."""
        self._generation += 1
        self._remember(None)
        self.drops += len(self._entries)
        self._entries.clear()
        self._by_tag.clear()
        self._bytes = 0

    def _remember(self, changes: tuple[Change, ...] | None) -> None:
        self._recent.append((self._generation, changes))
        self._recent_changes += len(changes) if changes else 1
        while self._recent_changes > _RECENT_CHANGES and len(self._recent) > 1:
            _, gone = self._recent.popleft()
            self._recent_changes -= len(gone) if gone else 1

    def _drop(self, changes: Sequence[Change]) -> None:
        if any(c.tag == "*" for c in changes):
            self.clear()
            return
        self._generation += 1
        self._remember(tuple(changes))
        for change in changes:
            for key in list(self._by_tag.get(change.tag, ())):
                ready = self._entries.get(key)
                if ready is not None and _names(change, ready.tags):
                    self._remove(key)
                    self.drops += 1


# What an answer costs in memory besides its body: its key, ETag, freshness, LRU and
# index entries, and per tag the Tag and its place in the index. Measured with
# tracemalloc: about 0.7 KB with 3 tags (a booking), 18 KB with 50 (a busy calendar
# week); these round up.
_ENTRY_BYTES = 512
_TAG_BYTES = 384


def _cost(ready: Ready) -> int:
    return len(ready.body) + _ENTRY_BYTES + _TAG_BYTES * len(ready.tags)


def _names(change: Change, tags: Iterable[Tag]) -> bool:
    return change.tag == "*" or any(
        tag.name == change.tag and _overlap(tag.lo, tag.hi, change.lo, change.hi) for tag in tags
    )


READY = web.AppKey("ready", ReadyAnswers)


# ---- what handlers call ----------------------------------------------------------------
def _key(request: web.Request) -> tuple[Hashable, ...]:
    return (request.path, request.query_string, principal(request).sight)


async def lookup(request: web.Request) -> web.Response | None:
    """The ready answer to this request, or None (then the handler builds it and calls
    ``keep``).

    Concurrent misses of one answer build it once: while a read builds an answer, others
    asking for the same wait for it to finish, then take the answer it kept (or, if it
    kept none, wait for the next builder, at most ``_WAITS`` builds in all, then build
    their own: a fill's first answer is not kept, as its own writes changed what it
    read). The builder's part ends with ``built(request)``, which
    the front door calls whatever happened (``api.middleware``)."""
    ready_answers = request.app.get(READY)
    if ready_answers is None or not ready_answers.enabled:
        return None
    ready_answers.refresh()
    key = _key(request)
    request[_KEY] = key
    ready = ready_answers.get(key)
    waited = 0
    while ready is None and waited < _WAITS:
        building = ready_answers.building.get(key)
        if building is None:
            break
        waited += 1
        ready_answers.waits += 1
        await asyncio.shield(building)
        ready_answers.refresh()
        ready = ready_answers.get(key)
    if ready is None:
        ready_answers.misses += 1
        if key not in ready_answers.building:
            ready_answers.building[key] = asyncio.get_running_loop().create_future()
            request[BUILDS] = key
        request[_SINCE] = ready_answers.generation
        return None
    ready_answers.hits += 1
    return respond(request, ready.body, ready.headers(request.app[CONFIG].api.staleness_s))


def built(request: web.Request) -> None:
    """The end of this request's building of its answer (kept or not): the reads that
    wait for it go on (see ``lookup``)."""
    ready_answers = request.app.get(READY)
    if ready_answers is None or not ready_answers.building:  # no read builds: a hit's case
        return
    key = request.pop(BUILDS, None)
    if key is None:
        return
    building = ready_answers.building.pop(key, None)
    if building is not None and not building.done():
        building.set_result(None)


def keep(
    request: web.Request, body: bytes, etag: str, freshness: Freshness, tags: Iterable[Tag]
) -> None:
    """Keep a complete answer built by the handler (its body, as sent with a 200)."""
    ready_answers = request.app.get(READY)
    key = request.get(_KEY)
    if ready_answers is None or key is None or freshness.partial or freshness.incomplete:
        return
    kept = dataclasses.replace(freshness, filled=False)
    ready_answers.put(key, Ready(body, etag, kept, tuple(tags)), request[_SINCE])


def max_bytes_of(app: web.Application) -> int:
    return int(app[CONFIG].api.ready_answers_mb * 1024 * 1024)
