"""Errors on Booxi's own paths keep Booxi's shape, ``{"message": str, "code": int}``, so a
frontend that parses Booxi's errors keeps working against the mirror. The mirror's own
routes (``/healthz``, ``/webhooks/booxi``...) answer ``api.errors``' shape instead."""

from __future__ import annotations

from aiohttp import web

API_PREFIX = "/booking/v1"


class BooxiShapedError(Exception):
    """An error answered in Booxi's shape from a ``/booking/v1`` route."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.error = error

    def response(self) -> web.Response:
        body: dict[str, object] = {"message": self.message, "code": self.status}
        if self.error:
            body["error"] = self.error
        return web.json_response(body, status=self.status, headers=self.headers)


def bad_request(message: str) -> BooxiShapedError:
    return BooxiShapedError(400, message)


def not_found(what: str, ident: object) -> BooxiShapedError:
    return BooxiShapedError(404, f"{what} {ident} not found")


def unavailable(message: str = "Booxi is unreachable: try again later") -> BooxiShapedError:
    return BooxiShapedError(503, message, headers={"Retry-After": "30"})
