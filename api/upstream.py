"""Booxi behind the read routes: the one fill helper, and the one place Booxi's refusals
become the mirror's answers.

``fill(request, scope, covered, fetch, what=...)`` is how every read route (calendar,
history, booking, client, client search, the directory) gets what the mirror does not
hold: check coverage, take the scope's lock (a burst of first reads asks Booxi once),
check again, fetch and store, and let the caller read again from storage.

``refused(error, what)`` maps a ``BooxiError`` from a fill to an answer in Booxi's error
shape (also applied by ``api.middleware`` to anything that escapes a handler):

| Booxi                               | the mirror answers                                  |
|-------------------------------------|-----------------------------------------------------|
| 429 (fair use)                      | 503 with ``Retry-After`` (Booxi's, at least 1 s)    |
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
import logging
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from api.booxi_shape import BooxiShapedError, unavailable
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


def lock(request: web.Request, scope: str) -> asyncio.Lock:
    """One fill per scope at a time: a burst of first reads fetches from Booxi once."""
    locks: dict[str, asyncio.Lock] = request.app[FILL_LOCKS]
    if scope not in locks:
        locks[scope] = asyncio.Lock()
    return locks[scope]


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
    async with lock(request, scope):
        if await covered():
            return False
        booxi = booxi_of(request, what)
        try:
            await fetch(booxi)
        except BooxiError as error:
            log.info(
                "fill.refused",
                extra={"scope_kind": scope.split(":")[0], "status": error.status},
            )
            raise refused(error, what) from None
        except MalformedError:
            log.warning("fill.unreadable", extra={"scope_kind": scope.split(":")[0]})
            raise BooxiShapedError(502, f"Booxi's answer for {what} could not be read") from None
    return True


def _message(error: BooxiError) -> str:
    body = error.body or {}
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str) and message:
        return message[:200]
    return f"status {error.status}"
