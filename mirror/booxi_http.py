"""``BooxiHttp``: how every call reaches Booxi. One session, one rate budget, typed errors.

Every call sends ``Booxi-PartnerKey`` and ``Accept: application/json``, first waits for
the shared ``RateBudget`` at the call's priority, and turns a non-2xx answer into the
``mirror.booxi_errors`` class for it. ``mirror.client.BooxiClient`` adds the typed
methods on top; this module knows no Booxi path.

Choices where ``booxi-api.md`` is silent or says "unknown":

- Only ``GET`` is retried (``DELETE`` is idempotent in theory, but a delete retried
  after a lost answer reports a 404 for a success); ``POST``/``PUT``/``DELETE`` go once.
  A retry follows ``BooxiUnavailable`` (network error, timeout, 5xx) or
  ``BooxiRateLimited``, after exponential backoff with full jitter (a random wait up to
  ``backoff_s`` x 2^n, at most ``max_backoff_s``), up to ``max_attempts`` in all.
- A 429 pauses the whole budget for its ``Retry-After`` (seconds or an HTTP date), or
  for 1 s when it has none (Booxi documents no such header), and the retry waits at
  least that long. A ``Retry-After`` longer than ``max_backoff_s`` is not waited out
  inside one call: the error is raised (the budget stays paused), so no caller hangs.
- A 400 answer charges the budget once more, as Booxi counts it twice.
- Redirects are not followed: the partner key must never travel to another host. A 3xx
  raises a plain ``BooxiError``, as does a 2xx whose body is not the JSON object expected.

Logs: DEBUG ``booxi.request`` per answer (method, path, the query's parameter names
only, status, ms), WARNING ``booxi.retry`` per retry. Never the key, nor query values
(e-mails and phone numbers travel there), nor bodies.
"""

import dataclasses
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from mirror.booxi_errors import (
    BooxiConflict,
    BooxiError,
    BooxiInvalidRequest,
    BooxiNotFound,
    BooxiRateLimited,
    BooxiRejected,
    BooxiUnavailable,
)
from mirror.budget import Priority, RateBudget

log = logging.getLogger(__name__)

Params = Mapping[str, str] | Sequence[tuple[str, str]]
Json = dict[str, Any]

METHODS = ("GET", "POST", "PUT", "DELETE")
PAUSE_WITHOUT_RETRY_AFTER_S = 1.0


@dataclasses.dataclass(frozen=True)
class Response:
    """One answer of Booxi: status, headers and the raw body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not JSON)."""
        return json.loads(self.body)


class BooxiHttp:
    """Calls Booxi at ``base_url`` with ``partner_key``, within ``budget``.

    Owns an ``aiohttp.ClientSession`` unless given one (made on first use); ``close()``
    it, or use ``async with``. ``stats`` counts requests sent, retries and errors by kind.
    """

    def __init__(
        self,
        base_url: str,
        partner_key: str,
        *,
        budget: RateBudget,
        timeout_s: float = 10,
        max_attempts: int = 4,
        session: aiohttp.ClientSession | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        if not partner_key:
            raise ValueError("partner_key must not be empty")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts!r}")
        if backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("backoff_s and max_backoff_s must not be negative")
        self.base_url = base_url.rstrip("/")
        self._key = partner_key
        self.budget = budget
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_attempts = max_attempts
        self._backoff = wait_random_exponential(multiplier=backoff_s, max=max_backoff_s)
        self._max_backoff_s = max_backoff_s
        self._session = session
        self._owns_session = session is None
        self.stats: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    async def close(self) -> None:
        """Close the session if this client made it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- low level ---------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        priority: Priority = Priority.POLL,
    ) -> Response:
        """Call Booxi; the 2xx answer, or the typed ``BooxiError`` for any other.

        ``GET`` is retried on ``BooxiUnavailable``/``BooxiRateLimited`` (see the module
        doc); every other method is sent exactly once.
        """
        method = _method(method)
        _check_path(path)
        data = _encode(json_body) if json_body is not None else None
        if method != "GET":
            return await self._send_checked(method, path, params, data, priority)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception(self._retryable),
            before_sleep=lambda state: self._log_retry(method, path, state),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                response = await self._send_checked(method, path, params, data, priority)
        return response

    async def forward(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: bytes | None = None,
        priority: Priority = Priority.WRITE,
    ) -> Response:
        """Send once and return Booxi's answer whatever its status (for write-through).

        Raises ``BooxiUnavailable`` only when no answer came back (network, timeout).
        """
        method = _method(method)
        _check_path(path)
        response = await self._send(method, path, params, body, priority)
        if not 200 <= response.status <= 299:
            self._count(BooxiError.from_response(response.status, response.body, {}))
        return response

    async def _send_checked(
        self, method: str, path: str, params: Params | None, data: bytes | None, priority: Priority
    ) -> Response:
        response = await self._send(method, path, params, data, priority)
        if 200 <= response.status <= 299:
            return response
        error = BooxiError.from_response(
            response.status, response.body, response.headers, call=f"{method} {path}"
        )
        self._count(error)
        raise error

    async def _send(
        self, method: str, path: str, params: Params | None, data: bytes | None, priority: Priority
    ) -> Response:
        """One request within the budget; ``BooxiUnavailable`` if no answer comes back."""
        waited = await self.budget.acquire(priority)
        headers = {"Booxi-PartnerKey": self._key, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        fields = {
            "method": method,
            "path": path,
            "params": _param_names(params),
            "priority": Priority(priority).name,
            "wait_ms": round(waited * 1000),
        }
        self.stats["requests"] += 1
        self.stats[f"requests.{method}"] += 1
        started = time.monotonic()
        try:
            async with self._get_session().request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as answer:
                response = Response(answer.status, dict(answer.headers), await answer.read())
        except TimeoutError:
            error = BooxiUnavailable(f"Booxi did not answer {method} {path} in time")
            self._count(error)
            log.debug("booxi.request timed out", extra={**fields, "status": None})
            raise error from None
        except aiohttp.ClientError as exc:
            error = BooxiUnavailable(f"cannot reach Booxi for {method} {path}: {_describe(exc)}")
            self._count(error)
            log.debug("booxi.request failed", extra={**fields, "status": None})
            if isinstance(exc, aiohttp.ClientResponseError):
                raise error from None  # its text holds the URL, query values included
            raise error from exc
        except OSError as exc:  # a reset aiohttp did not wrap
            error = BooxiUnavailable(f"cannot reach Booxi for {method} {path}: {exc}")
            self._count(error)
            log.debug("booxi.request failed", extra={**fields, "status": None})
            raise error from exc
        fields.update(status=response.status, ms=round((time.monotonic() - started) * 1000))
        log.debug("booxi.request %s %s %s", method, path, response.status, extra=fields)
        if response.status == 400:
            self.budget.charge()
        elif response.status == 429:
            limited = BooxiError.from_response(429, response.body, response.headers)
            pause = limited.retry_after if isinstance(limited, BooxiRateLimited) else None
            self.budget.pause(PAUSE_WITHOUT_RETRY_AFTER_S if pause is None else pause)
        return response

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _retryable(self, error: BaseException) -> bool:
        if isinstance(error, BooxiUnavailable):
            return True
        if isinstance(error, BooxiRateLimited):
            return error.retry_after is None or error.retry_after <= self._max_backoff_s
        return False

    def _wait(self, state: RetryCallState) -> float:
        wait = float(self._backoff(state))
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, BooxiRateLimited) and error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return wait

    def _log_retry(self, method: str, path: str, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        self.stats["retries"] += 1
        log.warning(
            "booxi.retry %s %s: attempt %d/%d failed (%s), wait %.1fs",
            method,
            path,
            state.attempt_number,
            self._max_attempts,
            _kind(error),
            wait,
            extra={
                "method": method,
                "path": path,
                "attempt": state.attempt_number,
                "max_attempts": self._max_attempts,
                "status": getattr(error, "status", None),
                "wait_s": round(wait, 3),
            },
        )

    def _count(self, error: BooxiError) -> None:
        self.stats[f"error.{_kind(error)}"] += 1

    async def _get_json(self, path: str, params: Params | None, priority: Priority) -> Json:
        response = await self.request("GET", path, params=params, priority=priority)
        return _json_object(response, f"GET {path}")

    async def _write_json(self, method: str, path: str, body: Mapping[str, Any]) -> Json:
        data = body_bytes(body)
        response = await self._send_checked(method, path, None, data, Priority.WRITE)
        return _json_object(response, f"{method} {path}")

    async def _pages(self, path: str, params: Params, priority: Priority) -> AsyncIterator[Json]:
        """Every page of a cursor-paged list; follow-ups send ``cursor`` alone."""
        page = await self._get_json(path, params, priority)
        yield page
        seen: set[str] = set()
        while (cursor := page.get("cursor")) is not None and cursor != "":
            if not isinstance(cursor, str) or cursor in seen:
                raise BooxiError(f"Booxi answered GET {path} with a repeated or invalid cursor")
            seen.add(cursor)
            page = await self._get_json(path, [("cursor", cursor)], priority)
            yield page

    async def _items(
        self, path: str, params: Params, key: str, priority: Priority
    ) -> AsyncIterator[Json]:
        async for page in self._pages(path, params, priority):
            items = page.get(key)
            if items is None:  # an empty page may come as null or without the key
                continue
            if not isinstance(items, list):
                raise BooxiError(f"Booxi answered GET {path} without a {key!r} list")
            for item in items:
                yield item


def _method(method: str) -> str:
    upper = method.upper()
    if upper not in METHODS:
        raise BooxiInvalidRequest(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return upper


def _check_path(path: str) -> None:
    if not path.startswith("/") or any(c in path for c in "?#") or "//" in path:
        raise BooxiInvalidRequest(
            "path must start with / and hold no query string, e.g. /booking/A10021380"
        )


def _encode(body: Any) -> bytes:
    try:
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise BooxiInvalidRequest(f"the request body is not JSON-serialisable: {exc}") from None


def body_bytes(body: Mapping[str, Any]) -> bytes:
    """A JSON object body as bytes; ``BooxiInvalidRequest`` if it is not one."""
    if not isinstance(body, Mapping):
        raise BooxiInvalidRequest(f"the request body must be a JSON object, got {type(body)}")
    return _encode(dict(body))


def _json_object(response: Response, call: str) -> Json:
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise BooxiError(
            f"Booxi answered {call} with {response.status} but no JSON object",
            status=response.status,
        )
    return data


def _param_names(params: Params | None) -> list[str]:
    """The names of the query parameters, each once: their values may be personal data."""
    if not params:
        return []
    keys = params.keys() if isinstance(params, Mapping) else (name for name, _ in params)
    return list(dict.fromkeys(str(key) for key in keys))


def _describe(exc: aiohttp.ClientError) -> str:
    """What went wrong, without text that may hold the URL's query."""
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientOSError):
        return str(exc)
    return type(exc).__name__


def _kind(error: BaseException | None) -> str:
    for cls, name in (
        (BooxiInvalidRequest, "invalid"),
        (BooxiRateLimited, "rate_limited"),
        (BooxiUnavailable, "unavailable"),
        (BooxiNotFound, "not_found"),
        (BooxiConflict, "conflict"),
        (BooxiRejected, "rejected"),
        (BooxiError, "other"),
    ):
        if isinstance(error, cls):
            return name
    return type(error).__name__
