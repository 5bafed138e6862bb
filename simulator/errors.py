"""Booxi's error shape: ``{"message": str, "code": int}``, plus ``"error"`` on conflicts.

**choice**: ``code`` repeats the HTTP status; Booxi's own numeric codes are not public.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


class BooxiError(Exception):
    """An answer in Booxi's error shape; raised by handlers, rendered by middleware."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.status}
        if self.error:
            body["error"] = self.error
        return body

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def bad_request(message: str) -> BooxiError:
    return BooxiError(400, message)


def not_found(what: str, ident: object) -> BooxiError:
    return BooxiError(404, f"{what} {ident} not found")


def conflict(message: str, error: str) -> BooxiError:
    """A 409 carrying one of Booxi's conflict names (``BookingConflict``, ...)."""
    return BooxiError(409, message, error=error)
