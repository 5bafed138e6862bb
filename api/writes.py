"""Write-through: forwarded to Booxi, Booxi's answer returned as is, stored on success.

``POST /booking``, ``PUT /booking/{bookingId}``, ``POST /client``, ``PUT`` and
``DELETE /client/{clientId}``, ``PUT /client/{clientId}/moduleLink/{moduleId}`` go to
Booxi once (``BooxiClient.forward``, priority WRITE, never retried). Booxi's status,
body and ``Content-Type`` come back unchanged whatever the status; a 2xx answer is
upserted (source ``write``) before the response leaves, so the next read shows it.
``GET /service/{serviceId}/availability`` and ``POST /availability/search`` are live
pass-through: forwarded the same way, nothing stored.

Before anything is sent (a refused request costs Booxi nothing, a 400 costs it double):

- The body of a ``POST``/``PUT`` must be a JSON object; ``clientId`` and ``serviceId``
  positive integers; ``bookingId`` 1 to 64 characters, ``moduleId`` 1 to 100. A
  ``POST`` must name its ``merchantId`` (Booxi requires it too): 400 otherwise.
- Store scoping: a ``POST`` whose ``merchantId`` the key does not see is refused 403. A
  path id is looked up in storage (booking, client, service): one of a store the key
  does not see, or one the mirror does not hold, is 404 (without saying which), unless
  the key sees every store, in which case the request goes to Booxi, which knows. For
  a store-bound key, every other object the body names (the client, staff, services,
  group event... of a booking; a client's ``merchantId``) must be at its stores too,
  looked up from Booxi when the mirror does not hold it: ``api.write_scope``.
- A write's query string is not passed on to Booxi (the pass-throughs' is).
- Booxi unreachable or timing out: 503 in Booxi's error shape, nothing stored.

``Idempotency-Key`` on a write: see ``api.idempotency`` (the first answer is replayed,
Booxi is called once; another request under the same key is 422, a repeat while the
first is with Booxi 409).

A 2xx answer is stored as ``api.written`` says, in the same transaction as the
idempotency result, whatever its shape: wrapped (``{"booking", "groupEvents"}``,
``{"client", "clientLinks"}``, ``{"link", "client"}``) or the bare object
(``mirror.answers``). One the mirror cannot store as is is returned unchanged, and the
object is read back from Booxi (``GET /booking/{id}``, ``GET /client/{id}``, at the
write priority) and stored before the answer leaves; if even that fails, the stored
(older) version is dropped, so the next read asks Booxi: after a write through the
mirror answers, no read of that object serves an older version. A stored booking also
asks for a re-poll of its staff member's calendar (``mirror.repoll``), for Booxi's own
event ids. ``DELETE`` of a client removes it and its links from storage on any 2xx.

Logs: INFO ``write.forwarded`` per write (method, route, status, duration_ms, stored),
``write.replayed`` and ``write.refused`` when Booxi was not called, INFO
``availability.forwarded`` per pass-through. Ids at most: never bodies, personal data,
or keys.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web
from sqlalchemy.engine import Connection

from api import write_checks as checks
from api import write_scope, written
from api.auth import principal
from api.booxi_shape import BooxiShapedError, bad_request, unavailable
from api.idempotency import Claim, claim_for
from api.keys import BOOXI, NO_RETENTION, WRITER
from api.query import Query
from api.webhooks import request_repoll
from api.written import Job
from mirror import answers
from mirror.booxi_errors import BooxiError, BooxiUnavailable
from mirror.booxi_http import Response
from mirror.budget import Priority
from mirror.client import BooxiClient
from mirror.vocabulary import (
    MAX_BOOKING_ID,
    MAX_MODULE_ID,
)
from storage import bookings, reference
from storage.errors import MalformedError
from storage.times import utcnow

log = logging.getLogger(__name__)

PASSED_HEADERS = ("Content-Type", "Retry-After")

Saver = Callable[[bytes, dt.datetime], Job]
Check = Callable[[], Awaitable[None]]


# ---- handlers ---------------------------------------------------------------------


RETENTION_HEADER = "Booxi-Mirror-Retention"


async def create_booking(request: web.Request) -> web.StreamResponse:
    """``Booxi-Mirror-Retention: none`` (or a key with ``retain_pii = false``): the booking
    goes to Booxi with the client's data, but the mirror keeps none of it."""
    body, data = await checks.json_body(request)
    retention = request.headers.get(RETENTION_HEADER, "full").strip().lower()
    if retention not in ("none", "full"):
        raise bad_request(f"{RETENTION_HEADER} must be none or full")
    merchant = functools.partial(checks.check_body_store, request, checks.body_merchant(data))
    retain = retention != "none" and principal(request).retain_pii
    check = checks.all_of(
        merchant, checks.named_check(request, write_scope.booking_names, data, retain=retain)
    )
    save: Saver = written.booking_job
    if not retain:
        request.app[NO_RETENTION].add(data.get("client"))
        save = functools.partial(written.booking_job, retain=False)
    return await _write(request, "booking-create", "/booking", body, check, save)


async def update_booking(request: web.Request) -> web.StreamResponse:
    booking_id = checks.text_id(request, "bookingId", MAX_BOOKING_ID)
    body, data = await checks.json_body(request)
    return await put_booking(request, booking_id, body, data)


async def put_booking(
    request: web.Request, booking_id: str, body: bytes, data: dict[str, object]
) -> web.StreamResponse:
    """``PUT /booking/{booking_id}`` with ``body`` (``data`` parsed), as the route does it,
    whatever ``request``'s own method and path (the dispatch of ``api.dispatch_queue`` calls it)."""
    table = bookings.BOOKING
    stored = functools.partial(
        checks.check_stored, request, table, table.c.booking_id, booking_id, "Booking"
    )
    check = checks.all_of(stored, checks.named_check(request, write_scope.booking_names, data))
    path = f"/booking/{quote(booking_id, safe='')}"
    return await _write(
        request,
        "booking-update",
        path,
        body,
        check,
        written.booking_job,
        method="PUT",
        booking_id=booking_id,
    )


async def create_client(request: web.Request) -> web.StreamResponse:
    body, data = await checks.json_body(request)
    merchant = functools.partial(checks.check_body_store, request, checks.body_merchant(data))
    check = checks.all_of(merchant, checks.named_check(request, write_scope.client_names, data))
    return await _write(request, "client-create", "/client", body, check, written.client_job)


async def update_client(request: web.Request) -> web.StreamResponse:
    client_id = checks.int_id(request, "clientId")
    body, data = await checks.json_body(request)
    path = f"/client/{client_id}"
    check = checks.all_of(
        checks.client_check(request, client_id),
        checks.named_check(request, write_scope.client_names, data),
    )
    return await _write(request, "client-update", path, body, check, written.client_job)


async def delete_client(request: web.Request) -> web.StreamResponse:
    """A client deleted through the mirror is erased from it at once (see mirror.privacy)."""
    client_id = checks.int_id(request, "clientId")
    save = functools.partial(written.deleted_client_job, client_id)
    response = await _write(
        request,
        "client-delete",
        f"/client/{client_id}",
        None,
        checks.client_check(request, client_id),
        save,
    )
    if 200 <= response.status <= 299:
        await request.app[WRITER].checkpoint()  # nothing of them left in the WAL either
    return response


async def put_module_link(request: web.Request) -> web.StreamResponse:
    client_id = checks.int_id(request, "clientId")
    module_id = checks.text_id(request, "moduleId", MAX_MODULE_ID)
    body, _ = await checks.json_body(request)
    path = f"/client/{client_id}/moduleLink/{quote(module_id, safe='')}"
    check = checks.client_check(request, client_id)
    return await _write(request, "client-module-link-update", path, body, check, written.link_job)


async def service_availability(request: web.Request) -> web.StreamResponse:
    service_id = checks.int_id(request, "serviceId")
    query = Query(request.query)
    if not query.has_cursor():  # checked here: Booxi's 400 would cost its quota double
        for name in ("from", "to"):
            query.required_instant(name)
        query.integer("staffId")
    table = reference.SERVICE
    check = functools.partial(
        checks.check_stored, request, table, table.c.id, service_id, "Service"
    )
    path = f"/service/{service_id}/availability"
    return await _pass_through(request, "service-availability", path, None, check)


async def service_customizations(request: web.Request) -> web.StreamResponse:
    """``GET /serviceCustomization?serviceId=...[&staffId=...]``: live pass-through (what
    each staff member charges and takes for a service; its shape is not public, so the
    mirror keeps nothing of it). The service must be one the key's stores offer."""
    query = Query(request.query)
    service_id = query.integer("serviceId", required=True) or 0
    query.integer("staffId")
    table = reference.SERVICE
    check = functools.partial(
        checks.check_stored, request, table, table.c.id, service_id, "Service"
    )
    return await _pass_through(
        request, "book-now-customizations", "/serviceCustomization", None, check
    )


async def search_availability(request: web.Request) -> web.StreamResponse:
    body, data = await checks.json_body(request)
    check = functools.partial(checks.check_body_store, request, checks.body_merchant(data))
    return await _pass_through(request, "availability-search", "/availability/search", body, check)


# ---- forwarding -------------------------------------------------------------------


async def _write(
    request: web.Request,
    route: str,
    path: str,
    body: bytes | None,
    check: Check,
    save: Saver,
    *,
    method: str | None = None,
    booking_id: str | None = None,
) -> web.StreamResponse:
    """``method`` (the request's by default) to Booxi's ``path``; ``booking_id``: the
    booking a read-back fetches (the path's ``bookingId`` by default)."""
    method = method or request.method
    writer = request.app[WRITER]
    booxi = _booxi(request)
    claim = claim_for(request, principal(request).name, body)
    if claim is not None:
        held = await writer.run(claim.take)
        if held is not None:
            try:
                replay = claim.replay(held)
            except BooxiShapedError as refused:
                _log_refused(method, route, refused.status)
                raise
            log.info(
                "write.replayed",
                extra={"method": method, "route": route, "status": replay.status},
            )
            return replay
    sent = False
    try:
        try:
            await check()
        except BooxiShapedError as refused:
            _log_refused(method, route, refused.status)
            raise
        sent = True
        answer, duration_ms = await _forward(
            booxi, request, path, body, with_query=False, method=method
        )
    except BaseException as error:
        if claim is not None and (not sent or isinstance(error, BooxiUnavailable)):
            await writer.run(claim.release)
        if isinstance(error, BooxiUnavailable):
            _log_forwarded("write.forwarded", method, route, 503, None, stored=False)
        raise
    job = None
    if 200 <= answer.status <= 299:
        job = _saving_job(save, answer, route, request)
        if job is None:
            job = await _read_back(booxi, request, route, answer, save, booking_id)
    stored = await _finish(request, route, job, claim, answer)
    if stored and route.startswith("booking-"):
        with contextlib.suppress(ValueError, UnicodeDecodeError):  # unreadable: read back
            await request_repoll(request, answers.booking_of(json.loads(answer.body))[0])
    _log_forwarded("write.forwarded", method, route, answer.status, duration_ms, stored=stored)
    return _response(answer.status, answer.headers, answer.body)


async def _pass_through(
    request: web.Request, route: str, path: str, body: bytes | None, check: Check
) -> web.StreamResponse:
    booxi = _booxi(request)
    try:
        await check()
        answer, duration_ms = await _forward(booxi, request, path, body)
    except BooxiUnavailable:
        _log_forwarded("availability.forwarded", request.method, route, 503, None, stored=False)
        raise
    _log_forwarded(
        "availability.forwarded", request.method, route, answer.status, duration_ms, stored=False
    )
    return _response(answer.status, answer.headers, answer.body)


def _booxi(request: web.Request) -> BooxiClient:
    booxi = request.app.get(BOOXI)
    if booxi is None:
        raise unavailable("this mirror has no Booxi connection configured")
    return booxi


async def _forward(
    booxi: BooxiClient,
    request: web.Request,
    path: str,
    body: bytes | None,
    *,
    with_query: bool = True,
    method: str | None = None,
) -> tuple[Response, float]:
    """Booxi's answer, whatever its status, and how long it took; ``BooxiUnavailable``
    when nothing came back. Only the live pass-throughs pass their query string on: a
    write's is dropped (Booxi's writes take none, and it could carry what the checks
    before forwarding never saw)."""
    started = time.perf_counter()
    params = list(request.query.items()) if with_query else None
    answer = await booxi.forward(method or request.method, path, params=params, body=body)
    return answer, round((time.perf_counter() - started) * 1000, 1)


def _response(status: int, headers: dict[str, str], body: bytes) -> web.Response:
    """Booxi's answer as it came, but for a 5xx: that is a 503 in Booxi's error shape (the
    mirror never answers 500; a write's outcome is then unknown, and the message says so)."""
    if status >= 500:
        return BooxiShapedError(
            503,
            f"Booxi failed (it answered {status}): the request may or may not have taken "
            "effect; read the object back before trying again",
            headers={"Retry-After": "30"},
        ).response()
    passed = {name: value for name in PASSED_HEADERS if (value := _header(headers, name))}
    return web.Response(status=status, body=body, headers=passed)


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


# ---- storing Booxi's answer -------------------------------------------------------


def _saving_job(save: Saver, answer: Response, route: str, request: web.Request) -> Job | None:
    """The job that stores a 2xx answer; None (and a warning) if it cannot be stored."""
    try:
        return save(answer.body, utcnow())
    except MalformedError:
        log.warning(
            "write.unexpected_answer",
            extra={"route": route, "status": answer.status, "ids": dict(request.match_info)},
        )
        return None


async def _read_back(
    booxi: BooxiClient,
    request: web.Request,
    route: str,
    answer: Response,
    save: Saver,
    booking_id: str | None = None,
) -> Job | None:
    """A 2xx answer the mirror could not store: read the object back from Booxi and store
    that. If even that fails, drop the stored (older) version, so that no read serves it:
    the next one asks Booxi."""
    try:
        parsed = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    booking_id = booking_id or request.match_info.get("bookingId") or answers.booking_id_of(parsed)
    path_client = request.match_info.get("clientId")  # checked before it was forwarded
    client_id = int(path_client) if path_client else _client_id_of(parsed)
    try:
        if route.startswith("booking-") and booking_id:
            got = await booxi.get_booking(booking_id, priority=Priority.WRITE)
            job = save(json.dumps(got).encode(), utcnow())
        elif route.startswith("client-") and client_id:
            got = await booxi.get_client(client_id, priority=Priority.WRITE)
            job = written.client_job(json.dumps(got).encode(), utcnow())
        else:
            log.warning("write.read_back_impossible", extra={"route": route})
            return None
    except (BooxiError, MalformedError) as error:
        log.warning(
            "write.read_back_failed",
            extra={"route": route, "error": type(error).__name__, "ids": dict(request.match_info)},
        )
        if booking_id and route.startswith("booking-"):
            return written.forget_booking_job(booking_id)
        return written.forget_client_job(client_id) if client_id else None
    log.info("write.read_back", extra={"route": route, "ids": dict(request.match_info)})
    return job


def _client_id_of(parsed: object) -> int | None:
    client, _ = answers.client_of(parsed)
    if client is not None:
        return int(client["id"])
    link, _ = answers.link_of(parsed)
    return int(link["clientId"]) if link is not None else None


async def _finish(
    request: web.Request, route: str, job: Job | None, claim: Claim | None, answer: Response
) -> bool:
    """Store the answer's objects and the idempotency result in one transaction; whether
    the objects were stored. A storage failure is logged: Booxi's answer still goes back."""
    writer = request.app[WRITER]

    def keep_result(conn: Connection) -> None:
        if claim is not None:
            claim.keep(conn, answer.status, _header(answer.headers, "Content-Type"), answer.body)

    def everything(conn: Connection) -> None:
        if job is not None:
            job(conn)
        keep_result(conn)

    try:
        await writer.run(everything)
        return job is not None
    except Exception:
        log.exception("write.store_failed", extra={"route": route, "status": answer.status})
    if claim is not None:
        try:
            await writer.run(keep_result)
        except Exception:  # the key stays claimed: a repeat gets 409, never a second write
            log.exception("write.idempotency_store_failed", extra={"route": route})
    return False


# ---- logs -------------------------------------------------------------------------


def _log_forwarded(
    event: str,
    method: str,
    route: str,
    status: int,
    duration_ms: float | None,
    *,
    stored: bool,
) -> None:
    log.info(
        event,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "stored": stored,
            "upstream": "answered" if duration_ms is not None else "unreachable",
        },
    )


def _log_refused(method: str, route: str, status: int) -> None:
    log.info("write.refused", extra={"method": method, "route": route, "status": status})
