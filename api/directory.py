"""Read handlers (being written)."""

from __future__ import annotations

from aiohttp import web

from api.booxi_shape import BooxiShapedError


async def _not_built(request: web.Request) -> web.Response:
    raise BooxiShapedError(501, "not built yet")


list_merchants = get_merchant = list_staff = list_services = list_categories = _not_built
