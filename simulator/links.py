"""Module links of staff and services: ``GET /staff|service/{id}/moduleLink/{moduleId}``.

They answer ``{"link": ..., "staff": ...}`` and ``{"link": ..., "service": ...}``, as
the client's do. Choices: an unknown object or a module the object has no link to is a
404; the links are read-only in the simulator (generated ones only: ``hr`` for staff,
``pos`` for services).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator.answers import answer
from simulator.errors import bad_request, not_found
from simulator.keys import WORLD
from simulator.params import path_id
from simulator.world import Json, World

MAX_MODULE_ID = 100
Table = Callable[[World], dict[int, Json]]
Links = Callable[[World], dict[tuple[int, str], Json]]


def _link(table: Table, links: Links, what: str, id_name: str, key: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        ident = path_id(id_name, request.match_info[id_name])
        module_id = request.match_info["moduleId"]
        if not module_id or len(module_id) > MAX_MODULE_ID:
            raise bad_request("moduleId must be 1 to 100 characters")
        world = request.app[WORLD]
        found = table(world).get(ident)
        if found is None:
            raise not_found(what, ident)
        link = links(world).get((found["id"], module_id))
        if link is None:
            raise not_found("Module link", f"{ident}/{module_id}")
        return answer(request, {"link": link, key: found})

    return handler


get_staff_link = _link(lambda w: w.staff, lambda w: w.staff_links, "Staff", "staffId", "staff")
get_service_link = _link(
    lambda w: w.services, lambda w: w.service_links, "Service", "serviceId", "service"
)


def linked_ids(links: dict[tuple[int, str], Json], module_id: str, external_id: str) -> set[int]:
    """Ids of the objects linked to ``externalId`` in module ``moduleId``."""
    return {
        ident
        for (ident, module), link in links.items()
        if module == module_id and link["externalId"] == external_id
    }
