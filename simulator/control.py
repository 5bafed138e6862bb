"""The ``/_sim/`` control API: faults, random changes, ground truth, webhook log.

Pinned (other tools drive it): ``GET``/``POST /_sim/faults``, ``POST /_sim/mutate``
with ``{"count": N, "seed": S}`` answering ``{"changed": [bookingId, ...]}``, and
``GET /_sim/state``. Ours besides: ``DELETE /_sim/faults`` (back to defaults),
``GET /_sim/webhooks`` (delivery counters and the latest attempts),
``GET /_sim/requests`` (the latest 20,000 API calls with their time, key and status,
to check a client's budget; ``DELETE`` clears it) and
``POST /_sim/webhooks/drain`` (wait until every delivery is done or given up).
``GET``/``POST``/``DELETE /_sim/dialects`` show, replace (``{"active": [names]}``, all
or nothing, 400 on an unknown name) or reset (to ``SimSettings.dialects``) the
dialects in force: ``{"active": [...], "available": {name: description}}``.
Control endpoints need no key and are never affected by faults.
"""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from simulator.body import Fields, read_json_object
from simulator.dialects import available
from simulator.errors import bad_request
from simulator.faults import Faults
from simulator.keys import DIALECTS, FAULTS, REQUEST_LOG, SETTINGS, WEBHOOKS, WORLD
from simulator.mutate import mutate

MAX_MUTATIONS = 10_000


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[FAULTS].as_json())


async def set_faults(request: web.Request) -> web.Response:
    faults = request.app[FAULTS]
    faults.update(await read_json_object(request))
    return web.json_response(faults.as_json())


async def reset_faults(request: web.Request) -> web.Response:
    faults = request.app[FAULTS]
    defaults = Faults(rate_limit=request.app[SETTINGS].rate_limit)
    for field in dataclasses.fields(Faults):
        setattr(faults, field.name, getattr(defaults, field.name))
    return web.json_response(faults.as_json())


async def get_dialects(request: web.Request) -> web.Response:
    return _dialects(request)


async def set_dialects(request: web.Request) -> web.Response:
    names = (await read_json_object(request)).get("active")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise bad_request('send {"active": [dialect names]}')
    try:
        request.app[DIALECTS].replace(names)
    except ValueError as error:
        raise bad_request(str(error)) from None
    return _dialects(request)


async def reset_dialects(request: web.Request) -> web.Response:
    request.app[DIALECTS].replace(request.app[SETTINGS].dialects)
    return _dialects(request)


def _dialects(request: web.Request) -> web.Response:
    return web.json_response(
        {"active": list(request.app[DIALECTS].names), "available": available()}
    )


async def post_mutate(request: web.Request) -> web.Response:
    body = Fields(await read_json_object(request))
    count = body.req_integer("count")
    if count > MAX_MUTATIONS:
        raise bad_request(f"count may be at most {MAX_MUTATIONS}")
    seed = body.data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad_request("seed must be an integer")
    return web.json_response({"changed": mutate(request.app[WORLD], count, seed)})


async def get_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[WORLD].state())


async def get_webhooks(request: web.Request) -> web.Response:
    webhooks = request.app[WEBHOOKS]
    return web.json_response(
        {
            "urls": list(webhooks.urls),
            "pending": webhooks.pending,
            "stats": dict(webhooks.stats),
            "deliveries": list(webhooks.log),
        }
    )


async def drain_webhooks(request: web.Request) -> web.Response:
    raw = request.query.get("timeout", "30")
    try:
        timeout = float(raw)
    except ValueError:
        raise bad_request("timeout must be a number of seconds") from None
    if not 0 < timeout <= 300:
        raise bad_request("timeout must be from 0 to 300 seconds")
    try:
        async with asyncio.timeout(timeout):
            await request.app[WEBHOOKS].drain()
        done = True
    except TimeoutError:
        done = False
    return web.json_response(
        {"drained": done, "pending": request.app[WEBHOOKS].pending}, status=200 if done else 504
    )


async def get_requests(request: web.Request) -> web.Response:
    log = request.app[REQUEST_LOG]
    return web.json_response({"requests": [dict(entry) for entry in log]})


async def clear_requests(request: web.Request) -> web.Response:
    request.app[REQUEST_LOG].clear()
    return web.json_response({"requests": []})
