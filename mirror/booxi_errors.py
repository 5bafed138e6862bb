"""What can go wrong talking to Booxi, as one small tree of exceptions.

- ``BooxiError``: the root; ``.status`` (the HTTP status, or None when nothing came back)
  and ``.body`` (Booxi's JSON error object, or None).
- ``BooxiUnavailable``: Booxi could not be reached, timed out, or answered 5xx. Safe to
  retry for reads; the API answers 503.
- ``BooxiRateLimited``: 429; ``.retry_after`` is the seconds Booxi asked us to wait, or
  None when it did not say.
- ``BooxiRejected``: any other 4xx; ``.body`` is Booxi's ``{"message", "code"[, "error"]}``
  exactly as sent, so the API can return it unchanged. ``BooxiNotFound`` (404) and
  ``BooxiConflict`` (409, with ``.error`` such as ``"BookingConflict"``) refine it.
- ``BooxiInvalidRequest``: our own arguments are wrong, found before anything is sent (a
  400 costs Booxi's fair-use quota double). Also a ``ValueError``.

``BooxiError.from_response()`` picks the class for an answer. Messages name the call
(method and path, never the query string, which can hold e-mails or phone numbers) and
quote Booxi's own message, shortened; they never hold the partner key.
"""

import datetime as dt
import email.utils
import json
from collections.abc import Mapping
from typing import Any

_MAX_QUOTED = 200  # characters of Booxi's message kept in ours


class BooxiError(Exception):
    """A call to Booxi failed. ``status`` is None when no HTTP answer came back."""

    def __init__(
        self, message: str, *, status: int | None = None, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @classmethod
    def from_response(
        cls,
        status: int,
        body_bytes: bytes,
        headers: Mapping[str, str],
        *,
        call: str = "",
        now: dt.datetime | None = None,
    ) -> "BooxiError":
        """The error for a non-2xx answer of Booxi.

        ``call`` names the request in the message (``"GET /booking/A1"``). ``now`` is the
        wall-clock time used to turn an HTTP-date ``Retry-After`` into seconds (default:
        the current time). A status outside 4xx/5xx gives a plain ``BooxiError``.
        """
        body = _json_object(body_bytes)
        quoted = _quote(body)
        where = f" to {call}" if call else ""
        if status == 429:
            retry_after = parse_retry_after(_header(headers, "Retry-After"), now=now)
            return BooxiRateLimited(
                f"Booxi answered 429 (too many requests){where}{quoted}",
                status=status,
                body=body,
                retry_after=retry_after,
            )
        if 500 <= status <= 599:
            return BooxiUnavailable(
                f"Booxi answered {status}{where}{quoted}", status=status, body=body
            )
        if status == 404:
            return BooxiNotFound(f"Booxi answered 404{where}{quoted}", status=status, body=body)
        if status == 409:
            error = body.get("error") if body is not None else None
            name = error if isinstance(error, str) else None
            return BooxiConflict(
                f"Booxi answered 409 {name or 'conflict'}{where}{quoted}",
                status=status,
                body=body,
                error=name,
            )
        if 400 <= status <= 499:
            return BooxiRejected(
                f"Booxi answered {status}{where}{quoted}", status=status, body=body
            )
        return BooxiError(f"Booxi answered an unexpected {status}{where}", status=status, body=body)


class BooxiUnavailable(BooxiError):
    """Booxi could not be reached, timed out, or answered 5xx (``status`` None or 5xx)."""


class BooxiRateLimited(BooxiError):
    """Booxi answered 429. ``retry_after``: seconds to wait as Booxi said, or None."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after


class BooxiRejected(BooxiError):
    """Booxi refused the request (4xx other than 429); ``body`` is its JSON error as sent."""


class BooxiNotFound(BooxiRejected):
    """Booxi answered 404: the id does not exist (or no longer does)."""


class BooxiConflict(BooxiRejected):
    """Booxi answered 409; ``error`` names the conflict (``"BookingConflict"``...) or None."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 409,
        body: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.error = error


class BooxiInvalidRequest(BooxiError, ValueError):
    """Our own arguments are invalid; raised before anything is sent to Booxi."""


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    None when absent or unreadable; never negative (a date in the past gives 0).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is unreadable
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    current = now if now is not None else dt.datetime.now(dt.UTC)
    return max(0.0, (when - current).total_seconds())


def _json_object(raw: bytes) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _quote(body: dict[str, Any] | None) -> str:
    message = body.get("message") if body is not None else None
    if not isinstance(message, str) or not message:
        return ""
    if len(message) > _MAX_QUOTED:
        message = message[: _MAX_QUOTED - 3] + "..."
    return f": {message}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, matching the name case-insensitively on a plain dict too."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, item in headers.items():
        if key.lower() == wanted:
            return item
    return None
