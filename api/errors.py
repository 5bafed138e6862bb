"""One error shape for everything the mirror itself answers with an error:
``{"error": {"code": "...", "message": "...", "status": N}}``.

Unknown exceptions are logged with their traceback and answered with a bare 500;
nothing of the exception reaches the client.
"""

from __future__ import annotations

import logging

from aiohttp import web

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
    504: "timeout",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")


def json_error(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {
            "error": {
                "code": code or CODES.get(status, "error"),
                "message": message,
                "status": status,
            }
        },
        status=status,
        headers=headers,
    )


def error_answer(request: web.Request, error: Exception) -> web.Response:
    """The answer to an error raised by a handler of the mirror's own routes (the front
    door, ``api.middleware``, calls it; a redirect is not an error and is re-raised
    before): this module's shape, and a logged traceback with a bare 500 for anything
    unexpected."""
    if isinstance(error, ApiError):
        return json_error(error.status, error.message, error.code)
    if isinstance(error, web.HTTPException):
        allow = error.headers.get("Allow")
        return json_error(error.status, error.reason, headers={"Allow": allow} if allow else None)
    log.error(
        "api.unhandled",
        extra={"path": request.path, "method": request.method},
        exc_info=(type(error), error, error.__traceback__),
    )
    return json_error(500, "internal error")
