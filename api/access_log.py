"""The mirror's access log: one structured ``http.request`` line per request.

Fields (in ``extra=``, so the JSON formatter of ``cli.logs`` makes them keys):
``method``, ``route`` (the route's name in ``api.routes``, ``unmatched`` for a path no
route serves), ``path``, ``status``, ``duration_ms``, ``remote`` and ``bytes`` (bytes
sent, headers included: aiohttp's ``body_length``), then whatever a handler put in
``request[ACCESS_FIELDS]`` (the webhook receiver: the event's id, type and outcome). The
query string is never logged: its values can be e-mail addresses and phone numbers
(``GET /client?email=...``); nor is any header.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest


class AccessLogger(AbstractAccessLogger):
    """For ``web.AppRunner(app, access_log_class=AccessLogger)``; logs to the runner's
    access logger (``aiohttp.access``) at INFO."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(EVENT, extra=fields(request, response, time))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


EVENT = "http.request"
# A handler's own fields for its request's access line.
ACCESS_FIELDS = web.RequestKey("access_fields", dict[str, object])


def fields(request: BaseRequest, response: web.StreamResponse, time: float) -> dict[str, object]:
    """The access line's fields, in order."""
    return fields_of(*parts(request, response, time))


def parts(request: BaseRequest, response: web.StreamResponse, time: float) -> tuple[Any, ...]:
    """What the line's fields are made of, taken as the request ends (``fields_of`` makes
    them, then or later)."""
    return (
        request.method,
        _route_name(request),
        request.path,
        response.status,
        time,
        request.remote,
        response.body_length,
        request.get(ACCESS_FIELDS),
    )


def fields_of(
    method: str,
    route: str | None,
    path: str,
    status: int,
    time: float,
    remote: str | None,
    sent: int,
    more: dict[str, object] | None,
) -> dict[str, object]:
    """The access line's fields, in order, from ``parts``."""
    line: dict[str, object] = {
        "method": method,
        "route": route or "unmatched",
        "path": path,
        "status": status,
        "duration_ms": round(time * 1000, 2),
        "remote": remote,
        "bytes": sent,
    }
    if more:
        line.update(more)
    return line


def _route_name(request: BaseRequest) -> str | None:
    if not isinstance(request, web.Request):
        return None
    try:
        return request.match_info.route.name
    except AssertionError:  # the request failed before routing (a malformed request line)
        return None
