"""``GET /booking/v1/client`` (search), ``/client/{id}`` and its module links.

Clients reach the mirror through webhooks, writes and first-demand fills (polls carry
only the client block of each booking): a client or a search the mirror has nothing
for is asked of Booxi once, stored, and answered; a search is asked of Booxi unless the
same one was answered lately (see ``search_clients``). Booxi's search rules apply: one
criterion family (``moduleId``+``externalId``, or ``merchantId`` with
``firstName``+``lastName``, ``email`` or ``phoneNumber``), first matches only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from api import upstream
from api.auth import principal
from api.booxi_shape import bad_request, not_found
from api.freshness import Freshness
from api.keys import CONFIG, READER, WRITER
from api.query import Query, path_id
from api.reading import answer, array
from mirror.client import BooxiClient
from mirror.fill import fill_client, fill_client_search
from storage import coverage, reads
from storage.times import is_stale, stored_utc, utcnow

MAX_MATCHES = 20


async def search_clients(request: web.Request) -> web.Response:
    """Answered from the mirror only when it knows it holds every match: Booxi answered
    the same search (for the same stores) within ``[api] staleness_s``. Otherwise Booxi
    is asked first. When Booxi cannot answer (unreachable, fair use), the mirror answers
    what it holds, marked ``Cache-Status: booxi-mirror; hit; detail=partial``."""
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
    scope = search_scope(criteria, merchant_id, caller.merchant_ids)
    staleness_s = request.app[CONFIG].api.staleness_s

    async def covered() -> bool:
        found = await reader.run(coverage.read_coverage, scope, *coverage.WHOLE)
        return found.complete and (
            found.synced_at is not None and not is_stale(found.synced_at, staleness_s, utcnow())
        )

    async def fetch(booxi: BooxiClient) -> None:
        await fill_client_search(
            booxi, request.app[WRITER], criteria, merchant_id, scope=scope, keep=caller.sees
        )

    async def anything() -> bool:  # offline, whatever the mirror holds is answered
        return True

    filled, partial = await upstream.fill_or_held(
        request, scope, covered, anything, fetch, what="the client search"
    )
    found = await reader.run(
        reads.search_clients, criteria, merchant_id, caller.merchant_ids, MAX_MATCHES
    )
    links = await reader.run(reads.links_of, [client_id for client_id, _ in found])
    searched = await reader.run(coverage.read_coverage, scope, *coverage.WHOLE)
    freshness = Freshness(searched.synced_at or utcnow(), filled=filled, incomplete=partial)
    return answer(
        {"clients": array(raw for _, raw in found), "clientLinks": array(links)}, freshness, request
    )


def search_scope(
    criteria: dict[str, str], merchant_id: int | None, stores: frozenset[int] | None
) -> str:
    """The coverage scope of one search: a digest, so that no search value (an e-mail, a
    phone number) is kept in clear beside the answer."""
    key = json.dumps(
        {
            "c": {k: v.strip().lower() for k, v in sorted(criteria.items())},
            "m": merchant_id,
            "s": sorted(stores) if stores is not None else "*",
        },
        sort_keys=True,
    )
    return "search:" + hashlib.sha256(key.encode()).hexdigest()[:32]


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
    client_id = path_id(request, "clientId")
    caller = principal(request)
    reader = request.app[READER]
    found = await reader.run(reads.client_with_links, client_id)
    filled = False
    if found is None:  # not mirrored (yet): ask Booxi; stored only if the key sees it

        async def held() -> bool:
            return await reader.run(reads.client_with_links, client_id) is not None

        async def fetch(booxi: BooxiClient) -> None:
            await fill_client(booxi, request.app[WRITER], client_id, keep=caller.sees)

        what = f"Client {client_id}"
        filled = await upstream.fill(request, f"client-info:{client_id}", held, fetch, what=what)
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
