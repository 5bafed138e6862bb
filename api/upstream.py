"""Booxi behind the read routes: the one fill helper, and the one place Booxi's refusals
become the mirror's answers.

``fill(request, scope, covered, fetch, what=...)`` is how every read route (calendar,
history, booking, client, client search, the directory) gets what the mirror does not
hold: check coverage, take the scope's lock (a burst of first reads asks Booxi once),
check again, fetch and store, and let the caller read again from storage. Fills cannot
be abused (``api.fill_guard``): a 404 Booxi gave the same caller for the same scope in
the last 10 minutes is answered again without asking Booxi, and a key that would make
the mirror fetch more than ``[api] fills_per_minute`` (burst ``fill_burst``) gets 429
with ``Retry-After``: the caller is the one limited. A read answered from storage costs
nothing.

``refused(error, what)`` maps a ``BooxiError`` from a fill to an answer in Booxi's error
shape (also applied by ``api.middleware`` to anything that escapes a handler):

| Booxi                               | the mirror answers                                  |
|-------------------------------------|-----------------------------------------------------|
| 429 (fair use)                      | 503 with ``Retry-After`` (Booxi's, at least 1 s)    |
| (the caller's own fill budget spent) | 429 with ``Retry-After``, Booxi not asked           |
| 404                                 | 404 naming the object                               |
| 400 or another 4xx                  | 502 quoting Booxi's message                         |
| 5xx, unreachable, timeout, dropped  | 503 with ``Retry-After: 30``                        |
| a 2xx the mirror cannot read        | 502                                                 |

A refusal is never a 500 and never a partial answer presented as complete. **choice**:
a 429 from Booxi is a 503, not a 429: the caller did nothing wrong and its own rate is
not what is limited; ``Retry-After`` tells it when to come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from api.auth import PRINCIPAL_KEY
from api.booxi_shape import BooxiShapedError, unavailable
from api.fill_guard import FILL_GUARD, FillGuard
from api.keys import BOOXI, FILL_LOCKS
from mirror.booxi_errors import (
    BooxiError,
    BooxiInvalidRequest,
    BooxiNotFound,
    BooxiRateLimited,
    BooxiRejected,
    BooxiUnavailable,
)
from mirror.client import BooxiClient
from storage.errors import MalformedError

log = logging.getLogger(__name__)

UNAVAILABLE_RETRY_S = 30


def refused(error: BooxiError, what: str) -> BooxiShapedError:
    """The answer for a Booxi failure while getting ``what`` (``"Client 12"``...)."""
    if isinstance(error, BooxiRateLimited):
        wait = max(1, math.ceil(error.retry_after or 1))
        return BooxiShapedError(
            503,
            f"Booxi is limiting the mirror's requests (fair use) while fetching {what}: "
            f"try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    if isinstance(error, BooxiNotFound):
        return BooxiShapedError(404, f"{what} not found")
    if isinstance(error, BooxiInvalidRequest):
        return BooxiShapedError(400, f"cannot ask Booxi for {what}: {error}")
    if isinstance(error, BooxiRejected):
        return BooxiShapedError(502, f"Booxi refused the request for {what}: {_message(error)}")
    if isinstance(error, BooxiUnavailable):
        return unavailable(
            f"the mirror does not hold {what} yet and Booxi is unreachable: try again later"
        )
    return BooxiShapedError(502, f"Booxi's answer for {what} could not be read")


def booxi_of(request: web.Request, what: str) -> BooxiClient:
    booxi = request.app.get(BOOXI)
    if booxi is None:
        raise unavailable(f"this mirror has no Booxi connection to fetch {what} from")
    return booxi


@dataclasses.dataclass
class _ScopeLock:
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    users: int = 0


@contextlib.asynccontextmanager
async def lock(request: web.Request, scope: str) -> AsyncIterator[None]:
    """One fill per scope at a time: a burst of first reads fetches from Booxi once.

    A scope's lock lives while someone holds or awaits it, so reads of many ids (random
    ones, say) leave nothing behind."""
    locks: dict[str, _ScopeLock] = request.app[FILL_LOCKS]
    entry = locks.get(scope)
    if entry is None:
        entry = locks[scope] = _ScopeLock()
    entry.users += 1
    try:
        async with entry.lock:
            yield
    finally:
        entry.users -= 1
        if entry.users == 0 and locks.get(scope) is entry:
            del locks[scope]


async def fill(
    request: web.Request,
    scope: str,
    covered: Callable[[], Awaitable[bool]],
    fetch: Callable[[BooxiClient], Awaitable[object]],
    *,
    what: str,
) -> bool:
    """Make sure the mirror holds ``scope``: True when Booxi was asked (and the answer
    stored), False when it was covered already. Raises ``BooxiShapedError`` as
    ``refused`` maps Booxi's failures."""
    if await covered():
        return False
    guard = request.app.get(FILL_GUARD)
    caller = _caller(request)
    _not_known_missing(guard, caller, scope, what)
    async with lock(request, scope):
        if await covered():
            return False
        _not_known_missing(guard, caller, scope, what)  # a burst's first fill found a 404
        booxi = booxi_of(request, what)
        if guard is not None:
            _within_fill_budget(guard, caller, scope, what)
        try:
            await fetch(booxi)
        except BooxiError as error:
            log.info(
                "fill.refused",
                extra={"scope_kind": scope.split(":")[0], "status": error.status},
            )
            if guard is not None and isinstance(error, BooxiNotFound):
                guard.remember_missing(caller, scope)
            raise refused(error, what) from None
        except MalformedError:
            log.warning("fill.unreadable", extra={"scope_kind": scope.split(":")[0]})
            raise BooxiShapedError(502, f"Booxi's answer for {what} could not be read") from None
    return True


def remember_not_found(request: web.Request, scope: str) -> None:
    """For a handler whose fill succeeded but found nothing this caller may see (another
    store's booking, say): answer the caller's repeats of ``scope`` 404 without Booxi,
    as after Booxi's own 404."""
    guard = request.app.get(FILL_GUARD)
    if guard is not None:
        guard.remember_missing(_caller(request), scope)


def _caller(request: web.Request) -> str:
    """The API key's name (every ``/booking/v1`` route has one); "" if there is none."""
    found = request.get(PRINCIPAL_KEY)
    return found.name if found is not None else ""


def _not_known_missing(guard: FillGuard | None, caller: str, scope: str, what: str) -> None:
    if guard is not None and guard.known_missing(caller, scope):
        log.info("fill.known_missing", extra={"scope_kind": scope.split(":")[0]})
        raise BooxiShapedError(404, f"{what} not found")


def _within_fill_budget(guard: FillGuard, caller: str, scope: str, what: str) -> None:
    wait = guard.take(caller)
    if wait > 0:
        seconds = guard.retry_after(wait)
        log.info(
            "fill.limited",
            extra={"scope_kind": scope.split(":")[0], "key_name": caller, "retry_after": seconds},
        )
        raise BooxiShapedError(
            429,
            f"this API key has asked for more than {guard.fills_per_minute:g} reads a minute "
            f"(at most {guard.burst} at once) of data the mirror does not hold and must fetch "
            f"from Booxi; asking for {what}: try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


def _message(error: BooxiError) -> str:
    body = error.body or {}
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str) and message:
        return message[:200]
    return f"status {error.status}"


async def fill_or_held(
    request: web.Request,
    scope: str,
    covered: Callable[[], Awaitable[bool]],
    held: Callable[[], Awaitable[bool]],
    fetch: Callable[[BooxiClient], Awaitable[object]],
    *,
    what: str,
) -> tuple[bool, bool]:
    """``fill`` for data the mirror may serve out of date: ``(filled, failing)``, where
    ``failing`` says Booxi could not answer (what ``fill`` maps to 503) and what ``held()``
    says the mirror has is served instead, marked by the caller."""
    try:
        return await fill(request, scope, covered, fetch, what=what), False
    except BooxiShapedError as refusal:
        if refusal.status != 503 or not await held():
            raise
        return False, True
