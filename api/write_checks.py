"""Checks a write makes before anything is forwarded to Booxi (a refused request costs
Booxi nothing, a 400 costs its fair-use quota double): the body is a JSON object, ids are
well formed, and the key sees the stores of what the request names (``api.write_scope``
for the objects named in a body)."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import Column, Table, select
from sqlalchemy.engine import Connection

from api import write_scope
from api.auth import principal
from api.booxi_shape import BooxiShapedError, bad_request, not_found
from api.keys import ENGINE
from api.query import path_id
from mirror.vocabulary import MAX_BOOKING_ID, MAX_ID, check_booking_id, check_module_id
from mirror.webhooks import MAX_DEPTH, too_deep
from storage import reference
from storage.rows import Json

Check = Callable[[], Awaitable[None]]


async def json_body(request: web.Request) -> tuple[bytes, Json]:
    raw = await request.read()
    if not raw.strip():
        raise bad_request("request body is empty: send a JSON object")
    if too_deep(raw):
        raise bad_request(f"request body nests deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise bad_request("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("request body must be a JSON object")
    return raw, data


def body_merchant(data: Json) -> int:
    merchant_id = data.get("merchantId")
    if (
        isinstance(merchant_id, bool)
        or not isinstance(merchant_id, int)
        or not 0 < merchant_id < MAX_ID
    ):
        raise bad_request("merchantId is required and must be a positive integer")
    return merchant_id


def int_id(request: web.Request, name: str) -> int:
    return path_id(request, name)


def text_id(request: web.Request, name: str, max_length: int) -> str:
    check = check_booking_id if max_length == MAX_BOOKING_ID else check_module_id
    try:
        return check(name, request.match_info[name])
    except ValueError as error:
        raise bad_request(str(error)) from None


def all_of(*checks: Check) -> Check:
    """The checks, in order: the first refusal stops the rest (and their look-ups)."""

    async def check() -> None:
        for one in checks:
            await one()

    return check


def named_check(
    request: web.Request,
    names_of: Callable[[Json], list[write_scope.Named]],
    data: Json,
    *,
    retain: bool = True,
) -> Check:
    """The store check of what the body names (``api.write_scope``), for a store-bound
    key; a malformed id in the body is refused (400) here, before the request is
    claimed or anything is looked up."""
    if principal(request).merchant_ids is None:
        return no_check
    names = names_of(data)
    return functools.partial(write_scope.check_names, request, names, retain=retain)


async def no_check() -> None:
    return None


async def check_body_store(request: web.Request, merchant_id: int) -> None:
    if not principal(request).sees(merchant_id):
        raise BooxiShapedError(403, f"this API key may not act for merchant {merchant_id}")


def client_check(request: web.Request, client_id: int) -> Check:
    table = reference.CLIENT
    return functools.partial(check_stored, request, table, table.c.id, client_id, "Client")


async def check_stored(
    request: web.Request, table: Table, column: Column[Any], ident: object, what: str
) -> None:
    """404 unless the key sees the store of the stored object; a key that sees every
    store passes without a lookup (Booxi decides about objects the mirror lacks)."""
    caller = principal(request)
    if caller.merchant_ids is None:
        return
    async with request.app[ENGINE].connect() as conn:
        found = await conn.run_sync(merchant_of, table, column, ident)
    if found is None or not caller.sees(found[0]):
        raise not_found(what, ident)


def merchant_of(
    conn: Connection, table: Table, column: Column[Any], ident: object
) -> tuple[int | None] | None:
    """``(merchant id,)`` of the stored object, or None when the mirror does not hold it."""
    row = conn.execute(select(table.c.merchant_id).where(column == ident)).first()
    return None if row is None else (row[0],)
