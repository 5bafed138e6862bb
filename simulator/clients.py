"""``/client``: search, read, create, update, delete, and module links.

Answers: ``{"clients", "clientLinks"}`` (search), ``{"client", "clientLinks"}`` (one
client, and writes), ``{"link", "client"}`` (module links); under ``write-bare`` the
writes answer the bare client or link (see ``simulator.dialects``).
"""

from __future__ import annotations

from aiohttp import web

from simulator import operations
from simulator.answers import answer
from simulator.body import read_json_object
from simulator.dialects import WRITE_BARE
from simulator.errors import bad_request, not_found
from simulator.keys import DIALECTS, WORLD
from simulator.params import Query, path_id
from simulator.world import Json, World

MAX_MODULE_ID = 100


async def search_clients(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    query = Query(request.query)
    merchant_id = query.integer("merchantId")
    criteria = {
        key: query.text(key)
        for key in ("moduleId", "externalId", "firstName", "lastName", "email", "phoneNumber")
    }
    criteria["merchantId"] = str(merchant_id) if merchant_id is not None else None
    clients = operations.search_clients(world, criteria)
    links = [link for client in clients for link in world.links_of(client["id"])]
    return answer(request, {"clients": clients, "clientLinks": links}, null_lists=True)


async def get_client(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    return answer(request, _client_body(world, _client(world, request)["id"]), null_lists=True)


async def create_client(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    client = operations.create_client(world, await read_json_object(request))
    return _written(request, client["id"])


async def update_client(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    client_id = _client_id(request)
    operations.update_client(world, client_id, await read_json_object(request))
    return _written(request, client_id)


async def delete_client(request: web.Request) -> web.Response:
    operations.delete_client(request.app[WORLD], _client_id(request))
    return web.Response(status=204)


async def get_module_link(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    client = _client(world, request)
    module_id = _module_id(request)
    link = world.links.get((client["id"], module_id))
    if link is None:
        raise not_found("Module link", f"{client['id']}/{module_id}")
    return answer(request, {"link": link, "client": client})


async def put_module_link(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    client_id = _client_id(request)
    link = operations.put_module_link(
        world, client_id, _module_id(request), await read_json_object(request)
    )
    if WRITE_BARE in request.app[DIALECTS]:
        return answer(request, link, bare="link")
    return answer(request, {"link": link, "client": world.clients[client_id]})


def _written(request: web.Request, client_id: int) -> web.Response:
    world = request.app[WORLD]
    if WRITE_BARE in request.app[DIALECTS]:
        return answer(request, world.clients[client_id], bare="client")
    return answer(request, _client_body(world, client_id), null_lists=True)


def _client_body(world: World, client_id: int) -> Json:
    return {"client": world.clients[client_id], "clientLinks": world.links_of(client_id)}


def _client_id(request: web.Request) -> int:
    return path_id("clientId", request.match_info["clientId"])


def _client(world: World, request: web.Request) -> Json:
    client_id = _client_id(request)
    client = world.clients.get(client_id)
    if client is None:
        raise not_found("Client", client_id)
    return client


def _module_id(request: web.Request) -> str:
    module_id = request.match_info["moduleId"]
    if not module_id or len(module_id) > MAX_MODULE_ID:
        raise bad_request("moduleId must be 1 to 100 characters")
    return module_id
