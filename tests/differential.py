"""Asking the simulator (as Booxi) and the mirror the same thing, and comparing."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.conftest import API_KEY, PARTNER_KEY, Sim

AUTH = {"Authorization": f"Bearer {API_KEY}"}


class Both:
    """The same request to the simulator (Booxi) and to the mirror."""

    def __init__(self, sim: Sim, mirror_url: str, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.mirror = mirror_url + "/booking/v1"
        self.session = session

    async def one(self, where: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        base, headers = (
            (self.sim.api, {"Booxi-PartnerKey": PARTNER_KEY})
            if where == "booxi"
            else (self.mirror, AUTH)
        )
        async with self.session.request(method, base + path, headers=headers, **kwargs) as response:
            text = await response.text()
            assert response.status < 500, (where, method, path, response.status, text)
            return response.status, (await response.json()) if text else None

    async def pages(self, where: str, path: str, params: Any) -> dict[str, Any]:
        """Every page of a cursor-paged answer merged: lists concatenated (null as
        empty), ``staff`` as a list, other keys from the first page."""
        status, page = await self.one(where, "GET", path, params=params)
        assert status == 200, (where, path, page)
        merged: dict[str, Any] = {}
        while True:
            for key, value in page.items():
                if key in ("cursor", "x-sim-envelope"):
                    continue
                if key == "staff":
                    value = value if isinstance(value, list) else [value] if value else []
                if isinstance(value, list) or value is None:
                    merged.setdefault(key, [])
                    for item in value or []:
                        if item not in merged[key]:
                            merged[key].append(item)
                else:
                    merged.setdefault(key, value)
            cursor = page.get("cursor")
            if not cursor:
                return merged
            status, page = await self.one(where, "GET", path, params={"cursor": cursor})
            assert status == 200, (where, path, page)

    async def same_pages(self, path: str, params: Any) -> dict[str, Any]:
        booxi = await self.pages("booxi", path, params)
        mirror = await self.pages("mirror", path, params)
        for key in set(booxi) | set(mirror):
            left, right = booxi.get(key) or [], mirror.get(key) or []
            if key in ("bookings", "calendarEvents"):
                assert left == right, (path, key)  # ordered lists: same order
            else:
                assert _by_json(left) == _by_json(right), (path, key, _diff(left, right))
        return mirror

    async def same_object(self, path: str, params: Any = None) -> Any:
        """A single answer (not paged): the same status and JSON from both."""
        booxi = await self.one("booxi", "GET", path, params=params)
        mirror = await self.one("mirror", "GET", path, params=params)
        assert booxi == mirror, path
        return mirror[1]

    async def same_offset_list(self, path: str, params: dict[str, str]) -> list[Any]:
        items: dict[str, list[Any]] = {}
        for where in ("booxi", "mirror"):
            got: list[Any] = []
            offset = 0
            while True:
                query = {**params, "offset": str(offset), "limit": "3"}
                status, page = await self.one(where, "GET", path, params=query)
                assert status == 200, (where, path, page)
                got += page["items"] or []
                offset += len(page["items"] or [])
                if not page["items"] or offset >= page["total"]:
                    break
            items[where] = got
        assert items["booxi"] == items["mirror"], path
        return items["mirror"]


def _by_json(values: Any) -> list[str]:
    values = values if isinstance(values, list) else [values]
    return sorted(json.dumps(v, sort_keys=True) for v in values if v is not None)


def _diff(left: Any, right: Any) -> tuple[list[str], list[str]]:
    """What only one side has, for an assertion's message."""
    a, b = set(_by_json(left)), set(_by_json(right))
    return sorted(a - b)[:3], sorted(b - a)[:3]
