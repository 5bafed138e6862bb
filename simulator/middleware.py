"""What stands in front of every handler: faults, keys, fair use, and Booxi's errors.

On ``/booking/v1`` paths, in order: an outage drops the connection unanswered; injected
latency; the key check (401); a forced answer (``force_status``); the fair-use budget
(429); injected 429s and 503s; the handler. On every path, every error, ours or
aiohttp's (unknown path 404, wrong method 405, oversized body 413), leaves in Booxi's
error shape and never as a stack trace. **choice**: either key is accepted on every
path.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator.errors import BooxiError
from simulator.keys import FAIR_USE, FAULT_RNG, FAULTS, REQUEST_LOG, SETTINGS

log = logging.getLogger(__name__)

API_PREFIX = "/booking/v1/"
FORCED_MESSAGE = "forced by the simulator"


@web.middleware
async def booxi_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    app = request.app
    faults = app[FAULTS]
    key: str | None = None
    arrived = time.time()  # the request log counts calls as Booxi's fair use would: on arrival
    try:
        if request.path.startswith(API_PREFIX):
            key = await _gate(request)
        response = await handler(request)
    except _Outage:
        return web.Response(status=503)  # never sent: the socket is closed already
    except BooxiError as error:
        response = error.response()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        response = BooxiError(error.status, error.reason, headers=_allow(error)).response()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("sim.unhandled", extra={"path": request.path})
        response = BooxiError(500, "Internal error").response()
    if key is not None and response.status == 400 and faults.rate_limit:
        app[FAIR_USE].charge(key)  # Booxi counts a 400 twice
    if request.path.startswith(API_PREFIX):
        app[REQUEST_LOG].append(
            {
                "at": arrived,
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "key": key,
                "status": response.status,
            }
        )
    return response


async def _gate(request: web.Request) -> str:
    """Faults, key and budget for one API call; the key's name when it may go on."""
    app = request.app
    faults = app[FAULTS]
    if faults.outage:
        _drop_connection(request)
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    key = _authenticate(request)
    forced = faults.forced(request.path.removeprefix(API_PREFIX.rstrip("/")))
    if forced is not None:
        headers = {"Retry-After": "1"} if forced == 429 else None
        raise BooxiError(forced, FORCED_MESSAGE, headers=headers)
    if faults.rate_limit:
        wait = app[FAIR_USE].admit(key)
        if wait is not None:
            raise BooxiError(
                429,
                "Too many requests: the fair-use limit is 5 per second and 300 per minute",
                headers={"Retry-After": str(int(wait))},
            )
    rng = app[FAULT_RNG]
    if faults.throttle_rate and rng.random() < faults.throttle_rate:
        raise BooxiError(429, "Too many requests (injected)", headers={"Retry-After": "1"})
    if faults.error_rate and rng.random() < faults.error_rate:
        raise BooxiError(503, "Service unavailable (injected)")
    return key


def _authenticate(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    for header, expected in (
        ("Booxi-PartnerKey", settings.partner_key),
        ("Booxi-APIKey", settings.merchant_key),
    ):
        given = request.headers.get(header)
        if given is not None and hmac.compare_digest(given.encode(), expected.encode()):
            return header
    raise BooxiError(401, "Missing or invalid API key: send Booxi-PartnerKey or Booxi-APIKey")


def _allow(error: web.HTTPException) -> dict[str, str]:
    allow = error.headers.get("Allow")
    return {"Allow": allow} if allow else {}


class _Outage(Exception):
    """The connection was dropped: nothing is to be answered."""


def _drop_connection(request: web.Request) -> None:
    """Close the socket without an answer, as a dead internet link looks to a client."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise _Outage
