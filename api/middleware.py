"""The front door: the one middleware in front of every request.

For every request it times the answer for ``/metrics`` (``api.metrics``) and turns
errors into answers: Booxi's shape (``api.booxi_shape``) on ``/booking/v1``, the
mirror's own (``api.errors``) elsewhere; an unexpected exception is logged with its
traceback and answered with a bare 500, nothing of it reaching the client. On
``/booking/v1`` it first checks the API key (``api.auth``), the routes its kind may
call, and its scope (``read`` for reads, ``write`` for the rest).

One middleware rather than three stacked: each layer costs the event loop a
coroutine and a frame per request, on the path of every ready answer.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from api import ready
from api.auth import PRINCIPAL_KEY, authenticate
from api.booxi_shape import API_PREFIX, BooxiShapedError
from api.errors import error_answer
from api.keys import CONFIG
from api.metrics import CLIENT_GONE, Metrics
from api.upstream import refused
from mirror.booxi_errors import BooxiError

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POSTs that only read (Booxi's availability search): the read scope is enough
READ_POSTS = frozenset({API_PREFIX + "/availability/search"})
_API = API_PREFIX + "/"


def front_door(metrics: Metrics) -> Middleware:
    """The middleware, observing into ``metrics``."""
    observe = metrics.observe

    @web.middleware
    async def front(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        booxi = request.path.startswith(_API)
        try:
            if booxi:
                _admit(request)
            response = await handler(request)
        except asyncio.CancelledError:  # the client went away before the answer
            observe(_route(request), request.method, CLIENT_GONE, time.perf_counter() - started)
            raise
        except web.HTTPException as error:
            if error.status < 400:  # a redirect: aiohttp answers it
                took = time.perf_counter() - started
                observe(_route(request), request.method, error.status, took)
                raise
            response = _booxi_answer(request, error) if booxi else error_answer(request, error)
        except Exception as error:
            response = _booxi_answer(request, error) if booxi else error_answer(request, error)
        finally:
            ready.built(request)  # if this read built an answer, those waiting for it go on
        observe(_route(request), request.method, response.status, time.perf_counter() - started)
        return response

    return front


def _route(request: web.Request) -> str:
    return request.match_info.route.name or "unmatched"


def _admit(request: web.Request) -> None:
    """The caller's key, route and scope, or a ``BooxiShapedError`` (401, 403)."""
    caller = authenticate(request.app[CONFIG].api.keys, request)
    if request.match_info.http_exception is None:  # unknown paths stay 404/405
        caller.require_route(request.match_info.route.name)
    reads = request.method in READ_METHODS or request.path in READ_POSTS
    caller.require("read" if reads else "write")
    request[PRINCIPAL_KEY] = caller


def _booxi_answer(request: web.Request, error: Exception) -> web.Response:
    if isinstance(error, BooxiShapedError):
        return error.response()
    if isinstance(error, BooxiError):  # a call to Booxi no handler mapped: mapped here, once
        return refused(error, "this request").response()
    if isinstance(error, web.HTTPException):
        allow = error.headers.get("Allow")
        return BooxiShapedError(
            error.status, error.reason, headers={"Allow": allow} if allow else None
        ).response()
    log.error(
        "api.unhandled",
        extra={"path": request.path, "method": request.method},
        exc_info=(type(error), error, error.__traceback__),
    )
    return BooxiShapedError(500, "internal error").response()
