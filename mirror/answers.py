"""A tolerant reader of Booxi's answers: every plausible shape where the docs are silent.

Booxi's public documentation leaves open how some answers are wrapped, and whether an
empty list comes as ``[]``, ``null`` or not at all. The simulator's dialects play each
variant (``simulator.dialects``); the mirror reads them all through these functions:

- a write answer (``POST``/``PUT /booking``) as ``{"booking": {...}, "groupEvents":
  [...]}`` or as the bare booking object (it has a ``bookingId``);
- a client answer as ``{"client": {...}, "clientLinks": [...]}`` or the bare client
  (it has an ``id``); a module link answer as ``{"link", "client"}`` or the bare link;
- a list that is absent or ``null`` is empty; ``staff`` as one object or a list (a
  last page's cursor, ``null``, ``""`` or absent, is read by ``mirror.booxi_http``);
- fields the mirror does not know are kept: the objects returned are Booxi's own
  dictionaries, stored verbatim.

Each reader returns what it found, or None where the answer holds no such object; the
caller decides (read the object back from Booxi, or report).
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def items(answer: object, key: str) -> list[Any]:
    """``answer[key]`` as a list: absent, ``null`` or not a list gives ``[]``."""
    if not isinstance(answer, dict):
        return []
    value = answer.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def objects(answer: object, key: str) -> list[Json]:
    """``answer[key]`` as a list of objects, whether Booxi sent one object or a list."""
    if not isinstance(answer, dict):
        return []
    value = answer.get(key)
    if isinstance(value, dict):
        return [value]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def booking_of(answer: object) -> tuple[Json | None, list[Json]]:
    """The booking and its group events, from a wrapped or a bare answer."""
    if not isinstance(answer, dict):
        return None, []
    wrapped = answer.get("booking")
    if isinstance(wrapped, dict) and isinstance(wrapped.get("bookingId"), str):
        return wrapped, items(answer, "groupEvents")
    if isinstance(answer.get("bookingId"), str):
        return answer, []
    return None, []


def booking_id_of(answer: object) -> str | None:
    """The booking id an answer names, even when the rest cannot be read."""
    booking, _ = booking_of(answer)
    if booking is not None:
        return str(booking["bookingId"])
    if isinstance(answer, dict):
        for holder in (answer, answer.get("booking")):
            if isinstance(holder, dict) and isinstance(holder.get("bookingId"), str | int):
                return str(holder["bookingId"])
    return None


def client_of(answer: object) -> tuple[Json | None, list[Json]]:
    """The client and its module links, from ``{"client", "clientLinks"}`` or bare."""
    if not isinstance(answer, dict):
        return None, []
    wrapped = answer.get("client")
    if isinstance(wrapped, dict) and _has_id(wrapped):
        return wrapped, items(answer, "clientLinks")
    if _has_id(answer) and "client" not in answer:
        return answer, items(answer, "clientLinks")
    return None, []


def link_of(answer: object) -> tuple[Json | None, Json | None]:
    """A client module link and its client, from ``{"link", "client"}`` or bare."""
    if not isinstance(answer, dict):
        return None, None
    link = answer.get("link")
    client = answer.get("client")
    if isinstance(link, dict) and _is_link(link):
        return link, client if isinstance(client, dict) and _has_id(client) else None
    if _is_link(answer):
        return answer, None
    return None, None


def _has_id(obj: Json) -> bool:
    value = obj.get("id")
    return isinstance(value, int) and not isinstance(value, bool)


def _is_link(obj: Json) -> bool:
    return isinstance(obj.get("clientId"), int) and isinstance(obj.get("moduleId"), str)
