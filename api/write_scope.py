"""Store isolation on writes: every object a write names must be at the key's stores.

A key bound to some stores (``Principal.merchant_ids`` not None) may not reach another
store's data through a write: Booxi answers a booking with its client's personal data,
so ``POST /booking`` naming another store's client would read that client. Before a
write of such a key is forwarded, each object its body names is checked:

| route                         | fields checked                                            |
|-------------------------------|-----------------------------------------------------------|
| ``POST``/``PUT /booking``     | ``merchantId``, ``client.id``, ``client.moduleId`` +      |
|                               | ``client.externalId``, ``clientLinks[]`` (top level and   |
|                               | in ``client``: ``clientId``, ``moduleId`` + ``externalId``),|
|                               | ``attendees[].id``, ``staffId``, ``modifiedByStaffId``,   |
|                               | ``createdByStaffId``, ``items[].serviceId``,              |
|                               | ``items[].resourceId``, ``groupEventId``                  |
| ``POST``/``PUT /client``      | ``merchantId``                                            |

(path ids, the booking of ``PUT /booking/{id}`` and the client of ``/client/{id}``, are
checked by ``api.writes`` against storage, as before.)

An object the mirror holds is checked against its stored store. One it does not hold
is asked of Booxi once, through the fills (``mirror.fill``: a client, a staff member, a
client search by module link) or ``GET /service/{id}``, under the same per-object lock
as the read routes; what comes back from outside the key's stores is not stored (nor
is a client when the write keeps no personal data). Outcomes, in Booxi's error shape:

- an id that is not a positive JSON integer below 2^53 (a bool, a string...): 400;
- an object of another store: 403 naming the field and the id ("client.id 12 is not
  at this key's stores"), never anything of the object itself;
- an object Booxi does not know: 404; Booxi unreachable or limiting: 503 (``api.upstream``).

**choice**: the mirror has no way to look up a resource or a group event it does not
hold (Booxi's ``GET /groupEvent/{id}`` is open to a store's public key only, and the
simulator has none): a store-bound key naming a resource gets 403, and a group event
the mirror does not hold (its calendar was not read yet) 404. Keys that see every
store are not checked here: Booxi decides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from sqlalchemy import select

from api import upstream
from api.auth import Principal, principal
from api.booxi_shape import BooxiShapedError, bad_request
from api.clients import search_scope
from api.keys import ENGINE, WRITER
from mirror.booxi_errors import BooxiNotFound
from mirror.budget import Priority
from mirror.client import BooxiClient
from mirror.fill import fill_client, fill_client_search, fill_staff
from mirror.vocabulary import check_module_id, is_id
from storage import bookings, reference
from storage.errors import MalformedError
from storage.rows import Json, service_row
from storage.times import utcnow

MAX_EXTERNAL_ID = 200

CLIENT = "client"
CLIENT_LINK = "client-link"  # a client named by module link: (moduleId, externalId)
STAFF = "staff"
SERVICE = "service"
RESOURCE = "resource"
GROUP_EVENT = "group-event"
MERCHANT = "merchant"


@dataclasses.dataclass(frozen=True)
class Named:
    """One object a write's body names: its kind, the field naming it, its id."""

    kind: str
    field: str
    ident: Any  # int, or (module id, external id) for CLIENT_LINK


# ---- what a body names --------------------------------------------------------------


def booking_names(data: Json) -> list[Named]:
    """Every object the body of ``POST``/``PUT /booking`` names; 400 for a malformed id."""
    names: list[Named] = []
    _id_field(names, data, "merchantId", "merchantId", MERCHANT)
    client = data.get("client")
    if client is not None:
        if not isinstance(client, dict):
            raise bad_request("client must be a JSON object")
        _id_field(names, client, "id", "client.id", CLIENT)
        _link(names, client, "client")
        _links(names, client.get("clientLinks"), "client.clientLinks")
    _links(names, data.get("clientLinks"), "clientLinks")
    for i, attendee in enumerate(_objects(data.get("attendees"), "attendees")):
        _id_field(names, attendee, "id", f"attendees[{i}].id", CLIENT)
    for field in ("staffId", "modifiedByStaffId", "createdByStaffId"):
        _id_field(names, data, field, field, STAFF)
    for i, item in enumerate(_objects(data.get("items"), "items")):
        _id_field(names, item, "serviceId", f"items[{i}].serviceId", SERVICE)
        _id_field(names, item, "resourceId", f"items[{i}].resourceId", RESOURCE)
    _id_field(names, data, "groupEventId", "groupEventId", GROUP_EVENT)
    return names


def client_names(data: Json) -> list[Named]:
    """What the body of ``POST``/``PUT /client`` names: its ``merchantId``, if any."""
    names: list[Named] = []
    _id_field(names, data, "merchantId", "merchantId", MERCHANT)
    return names


def _id_field(names: list[Named], data: Json, key: str, field: str, kind: str) -> None:
    value = data.get(key)
    if value is None:
        return
    if not is_id(value):
        raise bad_request(f"{field} must be a positive integer below 2^53")
    names.append(Named(kind, field, value))


def _objects(value: object, field: str) -> list[Json]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise bad_request(f"{field} must be an array of JSON objects")
    return value


def _link(names: list[Named], data: Json, field: str) -> None:
    module_id, external_id = data.get("moduleId"), data.get("externalId")
    if module_id is None and external_id is None:
        return
    if module_id is None or external_id is None:
        raise bad_request(f"{field}.moduleId and {field}.externalId go together")
    try:
        module_id = check_module_id(f"{field}.moduleId", module_id)
    except ValueError as error:
        raise bad_request(str(error)) from None
    if (
        not isinstance(external_id, str)
        or not external_id.strip()
        or len(external_id) > MAX_EXTERNAL_ID
    ):
        raise bad_request(f"{field}.externalId must be 1 to {MAX_EXTERNAL_ID} characters")
    names.append(Named(CLIENT_LINK, f"{field}.moduleId/externalId", (module_id, external_id)))


def _links(names: list[Named], value: object, field: str) -> None:
    for i, link in enumerate(_objects(value, field)):
        _id_field(names, link, "clientId", f"{field}[{i}].clientId", CLIENT)
        _link(names, link, f"{field}[{i}]")


# ---- checking them --------------------------------------------------------------------


async def check_names(request: web.Request, names: Sequence[Named], *, retain: bool = True) -> None:
    """Raise ``BooxiShapedError`` unless every object named is at the key's stores.
    ``retain=False``: a client looked up from Booxi is not stored (the write keeps no
    personal data). Keys that see every store pass unchecked."""
    caller = principal(request)
    if caller.merchant_ids is None:
        return
    checked: set[tuple[str, Any]] = set()
    for named in names:
        if (named.kind, named.ident) in checked:
            continue
        checked.add((named.kind, named.ident))
        merchants = await _merchants_of(request, caller, named, retain)
        # no client linked to a module link is fine: Booxi then creates one at the
        # booking's store, which merchantId is checked for
        named_none = not merchants and named.kind != CLIENT_LINK
        if named_none or not all(caller.sees(m) for m in merchants):
            raise _outside(named)


def _outside(named: Named) -> BooxiShapedError:
    if named.kind == MERCHANT:
        return BooxiShapedError(403, f"this API key may not act for merchant {named.ident}")
    if named.kind == CLIENT_LINK:
        return BooxiShapedError(403, f"{named.field} names a client not at this key's stores")
    if named.kind == RESOURCE:
        return BooxiShapedError(
            403,
            f"{named.field} {named.ident} cannot be checked against this key's stores "
            "(the mirror holds no resources): use a key that sees every store",
        )
    return BooxiShapedError(403, f"{named.field} {named.ident} is not at this key's stores")


async def _merchants_of(
    request: web.Request, caller: Principal, named: Named, retain: bool
) -> list[int | None]:
    """The store(s) of the object: as stored, else as Booxi says (a module link names
    one client, or none)."""
    if named.kind == MERCHANT:
        return [named.ident]
    if named.kind == RESOURCE:
        return []
    stored = await _stored(request, named)
    if stored is not None:
        return stored
    if named.kind == GROUP_EVENT:
        raise BooxiShapedError(
            404,
            f"{named.field} {named.ident} not found: the mirror does not hold it yet "
            "(read its calendar first)",
        )
    seen = _Seen(caller, store=retain or named.kind in (STAFF, SERVICE))
    what = named.field if named.kind == CLIENT_LINK else f"{named.field} {named.ident}"

    async def held() -> bool:
        return await _stored(request, named) is not None

    await upstream.fill(
        request, _scope(named, caller), held, _fetch(request, named, seen), what=what
    )
    if not seen.looked:  # held by the time the lock was ours: another request filled it
        return await _stored(request, named) or []
    return seen.merchants


@dataclasses.dataclass
class _Seen:
    """The ``keep`` of a fill that also notes every store Booxi's answer named."""

    caller: Principal
    store: bool
    looked: bool = False
    merchants: list[int | None] = dataclasses.field(default_factory=list)

    def keep(self, merchant_id: int | None) -> bool:
        self.looked = True
        self.merchants.append(merchant_id)
        return self.store and self.caller.sees(merchant_id)


def _scope(named: Named, caller: Principal) -> str:
    """The fill lock's scope, shared with the read routes' fills of the same object (a
    module link's is the client search's: a digest, no external id in clear)."""
    if named.kind == CLIENT_LINK:
        return _link_scope(named.ident, caller)
    prefix = {CLIENT: "client-info", STAFF: "staff-info", SERVICE: "service-info"}[named.kind]
    return f"{prefix}:{named.ident}"


def _link_scope(pair: tuple[str, str], caller: Principal) -> str:
    return search_scope({"moduleId": pair[0], "externalId": pair[1]}, None, caller.merchant_ids)


def _fetch(request: web.Request, named: Named, seen: _Seen) -> Any:
    writer = request.app[WRITER]

    async def fetch(booxi: BooxiClient) -> None:
        try:
            if named.kind == CLIENT:
                await fill_client(booxi, writer, named.ident, keep=seen.keep)
            elif named.kind == STAFF:
                await fill_staff(booxi, writer, named.ident, keep=seen.keep)
            elif named.kind == SERVICE:
                await _fill_service(booxi, request, named.ident, seen)
            else:
                await _search_link(booxi, request, named.ident, seen)
        except BooxiNotFound:
            if not seen.looked:  # Booxi does not know it
                raise
            # found, but not to be stored (another store, or no retention): seen says

    return fetch


async def _fill_service(
    booxi: BooxiClient, request: web.Request, service_id: int, seen: _Seen
) -> None:
    """``GET /service/{id}`` (bare or ``{"service": ...}``), stored if ``seen`` keeps it."""
    response = await booxi.request("GET", f"/service/{service_id}", priority=Priority.FILL)
    try:
        answer = response.json()
    except (ValueError, UnicodeDecodeError):
        raise MalformedError("the service answer is not JSON") from None
    wrapped = answer.get("service") if isinstance(answer, dict) else None
    service = wrapped if isinstance(wrapped, dict) else answer
    if not isinstance(service, dict) or service.get("id") != service_id:
        raise MalformedError("the answer holds no service object")
    if seen.keep(service.get("merchantId")):
        row = service_row(service, "fill", utcnow())
        await request.app[WRITER].run(lambda conn: reference.upsert_services(conn, [row]))


async def _search_link(
    booxi: BooxiClient, request: web.Request, pair: tuple[str, str], seen: _Seen
) -> None:
    """Who Booxi links to ``pair``: stored (and the search recorded as answered, as a
    client search would) when the write keeps personal data; only looked at otherwise."""
    module_id, external_id = pair
    criteria = {"moduleId": module_id, "externalId": external_id}
    if seen.store:
        scope = _link_scope(pair, seen.caller)
        await fill_client_search(
            booxi, request.app[WRITER], criteria, None, scope=scope, keep=seen.keep
        )
    else:
        answer = await booxi.search_clients(
            module_id=module_id, external_id=external_id, priority=Priority.FILL
        )
        for client in answer.get("clients") or []:
            if isinstance(client, dict):
                seen.keep(client.get("merchantId"))
    seen.looked = True  # no client linked is an answer too: Booxi creates one


# ---- storage ------------------------------------------------------------------------


async def _stored(request: web.Request, named: Named) -> list[int | None] | None:
    """The stored store(s) of the object; None when the mirror does not hold it."""
    async with request.app[ENGINE].connect() as conn:
        if named.kind == CLIENT_LINK:
            link, client = reference.LINK, reference.CLIENT
            module_id, external_id = named.ident
            query = (
                select(client.c.merchant_id)
                .select_from(link.join(client, client.c.id == link.c.entity_id))
                .where(
                    link.c.entity == "client",
                    link.c.module_id == module_id,
                    link.c.external_id == external_id,
                )
            )
            rows = (await conn.execute(query)).all()
            return [row[0] for row in rows] or None
        table = {
            CLIENT: reference.CLIENT,
            STAFF: reference.STAFF,
            SERVICE: reference.SERVICE,
            GROUP_EVENT: bookings.GROUP_EVENT,
        }[named.kind]
        row = (
            await conn.execute(select(table.c.merchant_id).where(table.c.id == named.ident))
        ).first()
        return None if row is None else [row[0]]


__all__ = ["Named", "booking_names", "check_names", "client_names"]
