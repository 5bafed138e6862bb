"""Booxi's two paging styles.

Cursor style: the answer carries ``cursor``; the follow-up sends ``cursor`` alone.
**choice**: the cursor is opaque base64 JSON holding the original query and the sort
key of the last record served (keyset paging), so records changing between pages are
neither skipped nor repeated; it has no expiry. The last page answers ``"cursor": null``.

Offset style: ``offset``/``limit`` in, ``{"offset","limit","total","items"}`` out.
**choice**: ``limit`` defaults to the page size and may not exceed 100.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from simulator.errors import bad_request
from simulator.params import Query

T = TypeVar("T")
MAX_LIMIT = 100


def encode_cursor(kind: str, query: dict[str, Any], after: list[Any]) -> str:
    raw = json.dumps({"kind": kind, "q": query, "after": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, token: str) -> tuple[dict[str, Any], list[Any]]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["kind"] != kind or not isinstance(data["q"], dict):
            raise ValueError(kind)
        after = data["after"]
        if not isinstance(after, list):
            raise ValueError(kind)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise bad_request("cursor is not valid for this endpoint") from None
    return data["q"], after


def keyset_page(
    items: Sequence[T],
    key: Callable[[T], list[Any]],
    after: list[Any] | None,
    size: int,
    *,
    descending: bool = False,
) -> tuple[list[T], list[Any] | None]:
    """The page following ``after`` in ``items`` (already sorted by ``key``)."""
    if after is not None:
        if descending:
            items = [item for item in items if key(item) < after]
        else:
            items = [item for item in items if key(item) > after]
    page = list(items[:size])
    more = len(items) > size
    return page, (key(page[-1]) if more and page else None)


def offset_page(query: Query, items: Sequence[T], default_limit: int) -> dict[str, Any]:
    offset = query.integer("offset", minimum=0)
    limit = query.integer("limit", minimum=1)
    offset = offset or 0
    limit = limit or default_limit
    if limit > MAX_LIMIT:
        raise bad_request(f"limit may not exceed {MAX_LIMIT}, got {limit}")
    return {
        "offset": offset,
        "limit": limit,
        "total": len(items),
        "items": list(items[offset : offset + limit]),
    }
