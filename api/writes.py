"""Write-through: forwarded to Booxi, Booxi's answer returned as is, stored on success."""

from __future__ import annotations

from aiohttp import web

from api.booxi_shape import BooxiShapedError


async def _not_built(request: web.Request) -> web.Response:
    raise BooxiShapedError(501, "not built yet")


create_booking = update_booking = create_client = update_client = delete_client = _not_built
put_module_link = service_availability = search_availability = _not_built
