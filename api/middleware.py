"""In front of every ``/booking/v1`` handler: the API key, the routes its kind may call,
its scope, Booxi's error shape."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from api.auth import PRINCIPAL_KEY, authenticate
from api.booxi_shape import API_PREFIX, BooxiShapedError
from api.keys import CONFIG
from api.upstream import refused
from mirror.booxi_errors import BooxiError

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POSTs that only read (Booxi's availability search): the read scope is enough
READ_POSTS = frozenset({API_PREFIX + "/availability/search"})


@web.middleware
async def booxi_api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX + "/"):
        return await handler(request)
    try:
        caller = authenticate(request.app[CONFIG].api.keys, request)
        if request.match_info.http_exception is None:  # unknown paths stay 404/405
            caller.require_route(request.match_info.route.name)
        reads = request.method in READ_METHODS or request.path in READ_POSTS
        caller.require("read" if reads else "write")
        request[PRINCIPAL_KEY] = caller
        return await handler(request)
    except BooxiShapedError as error:
        return error.response()
    except BooxiError as error:  # a call to Booxi no handler mapped: mapped here, once
        return refused(error, "this request").response()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        allow = error.headers.get("Allow")
        return BooxiShapedError(
            error.status, error.reason, headers={"Allow": allow} if allow else None
        ).response()
    except Exception:
        log.exception("api.unhandled", extra={"path": request.path, "method": request.method})
        return BooxiShapedError(500, "internal error").response()
