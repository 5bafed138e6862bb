"""``GET /booking/v1/client`` (search), ``/client/{id}`` and its module links.

Clients reach the mirror through webhooks, writes and first-demand fills (polls carry
only the client block of each booking): a client or a search the mirror has nothing
for is asked of Booxi once, stored, and answered. Booxi's search rules apply: one
criterion family (``moduleId``+``externalId``, or ``merchantId`` with
``firstName``+``lastName``, ``email`` or ``phoneNumber``), first matches only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.auth import principal
from api.booxi_shape import bad_request, not_found, unavailable
from api.freshness import Freshness
from api.keys import BOOXI, READER, WRITER
from api.query import Query
from api.reading import answer, array
from mirror.booxi_errors import BooxiNotFound, BooxiRejected, BooxiUnavailable
from mirror.fill import fill_client, fill_client_search
from storage import reads
from storage.times import stored_utc, utcnow

MAX_MATCHES = 20


async def search_clients(request: web.Request) -> web.Response:
    query = Query(request.query)
    caller = principal(request)
    merchant_id = query.integer("merchantId")
    criteria = {
        k: v
        for k in ("moduleId", "externalId", "firstName", "lastName", "email", "phoneNumber")
        if (v := query.text(k))
    }
    _check_criteria(criteria, merchant_id)
    if merchant_id is not None and not caller.sees(merchant_id):
        raise not_found("Merchant", merchant_id)
    reader = request.app[READER]
    found = await reader.run(
        reads.search_clients, criteria, merchant_id, caller.merchant_ids, MAX_MATCHES
    )
    filled = False
    if not found:
        booxi = request.app.get(BOOXI)
        if booxi is not None:
            try:
                await fill_client_search(booxi, request.app[WRITER], criteria, merchant_id)
            except BooxiUnavailable:
                raise unavailable(
                    "no match in the mirror, and Booxi is unreachable to confirm: try again later"
                ) from None
            except BooxiRejected as error:
                raise bad_request(f"Booxi refused the search: {error}") from None
            filled = True
            found = await reader.run(
                reads.search_clients, criteria, merchant_id, caller.merchant_ids, MAX_MATCHES
            )
    links = await reader.run(reads.links_of, [client_id for client_id, _ in found])
    freshness = Freshness(utcnow(), filled=filled)
    return answer(
        {"clients": array(raw for _, raw in found), "clientLinks": array(links)}, freshness, request
    )


def _check_criteria(criteria: dict[str, str], merchant_id: int | None) -> None:
    if bool(criteria.get("moduleId")) != bool(criteria.get("externalId")):
        raise bad_request("moduleId and externalId go together")
    contact = [k for k in ("firstName", "email", "phoneNumber") if k in criteria]
    if bool(criteria.get("firstName")) != bool(criteria.get("lastName")):
        raise bad_request("firstName and lastName go together")
    if "externalId" in criteria:
        if contact:
            raise bad_request("search by moduleId+externalId or by contact info, not both")
        return
    if merchant_id is None:
        raise bad_request("merchantId is required to search by contact info")
    if len(contact) != 1:
        raise bad_request("give exactly one of firstName+lastName, email or phoneNumber")


async def _client(
    request: web.Request,
) -> tuple[int, tuple[str, int | None, list[str], Any], bool]:
    raw_id = request.match_info["clientId"]
    if not raw_id.isdigit() or len(raw_id) > 15:
        raise bad_request(f"clientId must be an integer, got {raw_id!r}")
    client_id = int(raw_id)
    caller = principal(request)
    reader = request.app[READER]
    found = await reader.run(reads.client_with_links, client_id)
    filled = False
    if found is None and caller.merchant_ids is None and (booxi := request.app.get(BOOXI)):
        try:
            await fill_client(booxi, request.app[WRITER], client_id)
        except BooxiNotFound:
            raise not_found("Client", client_id) from None
        except BooxiUnavailable:
            raise unavailable(
                "the mirror does not hold this client and Booxi is unreachable: try again later"
            ) from None
        filled = True
        found = await reader.run(reads.client_with_links, client_id)
    if found is None or not caller.sees(found[1]):
        raise not_found("Client", client_id)
    return client_id, found, filled


async def get_client(request: web.Request) -> web.Response:
    _client_id, (raw, _merchant, links, synced_at), filled = await _client(request)
    freshness = Freshness(stored_utc(synced_at), filled=filled)
    return answer({"client": raw, "clientLinks": array(links)}, freshness, request)


async def get_module_link(request: web.Request) -> web.Response:
    client_id, (raw, _merchant, _links, synced_at), filled = await _client(request)
    module_id = request.match_info["moduleId"]
    if not module_id or len(module_id) > 100:
        raise bad_request("moduleId must be 1 to 100 characters")
    link = await request.app[READER].run(reads.module_link, client_id, module_id)
    if link is None:
        raise not_found("Module link", f"{client_id}/{module_id}")
    return answer(
        {"link": link, "client": raw}, Freshness(stored_utc(synced_at), filled=filled), request
    )
