"""The ``include`` objects embedded next to calendar events and bookings, de-duplicated."""

from __future__ import annotations

from collections.abc import Iterable

from simulator.world import Json, World


def unique_by(items: Iterable[Json], key: str) -> list[Json]:
    seen: dict[object, Json] = {}
    for item in items:
        seen.setdefault(item[key], item)
    return list(seen.values())


def services_of(world: World, bookings: list[Json], group_events: list[Json]) -> list[Json]:
    """Every service the bookings' items and the group events name, in order of first use."""
    ids: dict[int, None] = {}
    for booking in bookings:
        for item in booking["items"]:
            ids[item["serviceId"]] = None
    for event in group_events:
        ids[event["serviceId"]] = None
    return [world.services[i] for i in ids if i in world.services]


def group_events_of(world: World, bookings: list[Json]) -> list[Json]:
    ids = {b["groupEventId"]: None for b in bookings if b.get("groupEventId") is not None}
    return [world.group_events[i] for i in ids if i in world.group_events]
