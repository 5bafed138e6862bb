"""The one place an API answer is shaped on its way out, dialects applied.

Handlers build the default answer and hand it to ``answer()`` (or ``envelope()`` for
the JSON itself); this module never changes the world's objects, only copies. What
each dialect does and why is in ``simulator.dialects``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from simulator.dialects import (
    CURSOR_ABSENT,
    CURSOR_EMPTY,
    LISTS_NULL,
    UNASSIGNED_ABSENT,
    UNASSIGNED_ZERO,
    UNKNOWN_FIELDS,
    ActiveDialects,
)
from simulator.keys import DIALECTS
from simulator.world import Json

EXTRA_FIELD = "x-sim-extra"
EXTRA_VALUE: Json = {"note": "unknown to the mirror"}
ENVELOPE_FIELD = "x-sim-envelope"
# envelope key -> kind of the object(s) it holds; only these kinds get ``x-sim-extra``
KINDS = {
    "booking": "booking",
    "bookings": "booking",
    "client": "client",
    "clients": "client",
    "staff": "staff",
    "staffs": "staff",
    "service": "service",
    "services": "service",
    "merchant": "merchant",
    "merchants": "merchant",
}
EXTRA_KINDS = frozenset(KINDS.values())


def answer(
    request: web.Request,
    body: Any,
    *,
    bare: str | None = None,
    items: str | None = None,
    null_lists: bool = False,
) -> web.Response:
    """``body`` as JSON, shaped by the active dialects.

    ``bare``: the body is one object of that kind (``"staff"``...), not an envelope;
    ``items``: the kind of an offset list's ``items``; ``null_lists``: the answer is one
    of those ``lists-null`` applies to (calendar, history, booking, client).
    """
    active = request.app[DIALECTS]
    if bare is not None:
        if bare == "booking":
            body = _unassigned(active, body)
        extra = UNKNOWN_FIELDS in active and bare in EXTRA_KINDS
        return web.json_response(_extra(body) if extra else body)
    shaped: Json = {
        k: (_unassigned(active, v) if KINDS.get(k) == "booking" else v) for k, v in body.items()
    }
    if "cursor" in shaped and shaped["cursor"] is None:
        if CURSOR_ABSENT in active:
            del shaped["cursor"]
        elif CURSOR_EMPTY in active:
            shaped["cursor"] = ""
    if null_lists and LISTS_NULL in active:
        shaped = {k: (None if v == [] else v) for k, v in shaped.items()}
    if UNKNOWN_FIELDS in active:
        kinds = {**KINDS, "items": items} if items in EXTRA_KINDS else KINDS
        shaped = {k: (_extra(v) if k in kinds else v) for k, v in shaped.items()}
        shaped[ENVELOPE_FIELD] = 1
    return web.json_response(shaped)


def _extra(value: Any) -> Any:
    """A copy of an object, or of a list of objects, each with ``x-sim-extra``."""
    if isinstance(value, dict):
        return {**value, EXTRA_FIELD: dict(EXTRA_VALUE)}
    if isinstance(value, list):
        return [_extra(item) for item in value]
    return value


def _unassigned(active: ActiveDialects, value: Any) -> Any:
    """A booking (or list of them) as ``unassigned-absent`` / ``unassigned-zero`` show a
    request no staff member has taken: copies, only of bookings with ``staffId: null``."""
    if isinstance(value, list):
        return [_unassigned(active, item) for item in value]
    if not isinstance(value, dict) or "staffId" not in value or value["staffId"] is not None:
        return value
    if UNASSIGNED_ABSENT in active:
        names = ("staffId", "staffFirstName", "staffLastName")
        return {k: v for k, v in value.items() if k not in names}
    if UNASSIGNED_ZERO in active:
        return {**value, "staffId": 0, "staffFirstName": "", "staffLastName": ""}
    return value


def event_content(active: ActiveDialects, content: Json) -> Json:
    """A webhook's ``content``, with ``unknown-fields`` applied to its booking and client
    and the ``unassigned-*`` dialects to its booking."""
    if "booking" in content:
        content = {**content, "booking": _unassigned(active, content["booking"])}
    if UNKNOWN_FIELDS not in active:
        return content
    return {k: (_extra(v) if k in ("booking", "client") else v) for k, v in content.items()}
