"""The OpenAPI 3.1 document served at ``GET /openapi.json``.

Built from the route table (``api.routes.ROUTES``: method, path, handler, name) and what
this module says about each route, by name, in ``OPERATIONS``. A route without an entry
still appears, with its name as summary; ``tests/test_ops.py`` checks that none lacks one.
Booxi's objects are described as Booxi's JSON, not re-specified: the mirror serves them as
Booxi sent them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from api.auth import MERCHANT_KEY_ROUTES
from api.booxi_shape import API_PREFIX
from mirror import __version__
from mirror.vocabulary import BOOKING_METHODS, EVENT_TYPES, INCLUDES

Json = dict[str, Any]
Route = tuple[str, str, Any, str]

CONFLICTS = (
    "BookingConflict",
    "ScheduleConflict",
    "TimeSlotConflict",
    "PaymentConflict",
    "ModuleConflict",
    "ClientHasFutureBookings",
)
PATH_PARAMS: dict[str, Json] = {
    "bookingId": {"type": "string", "maxLength": 64, "examples": ["A10021380"]},
    "clientId": {"type": "integer"},
    "merchantId": {"type": "integer"},
    "serviceId": {"type": "integer"},
    "moduleId": {"type": "string", "maxLength": 100},
}
_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _query(name: str, schema: Json, description: str, *, required: bool = False) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def _repeated(name: str, values: Sequence[str], description: str) -> Json:
    return {
        **_query(name, {"type": "array", "items": {"type": "string", "enum": list(values)}}, ""),
        "description": description + " Repeat the parameter for several values.",
        "style": "form",
        "explode": True,
    }


_INT = {"type": "integer"}
_TEXT = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_CURSOR = _query(
    "cursor",
    _TEXT,
    "The previous page's `cursor`. A follow-up request sends `cursor` and no other parameter.",
)
_LANGUAGE = _query("language", _TEXT, "Language of translated texts, e.g. `en`.")
_MODULE = (
    _query("moduleId", _TEXT, "External module; with `externalId`."),
    _query("externalId", _TEXT, "Id in that module; with `moduleId`."),
)
_MERCHANT = _query("merchantId", _INT, "Only this store.")
_BOOK_NOW_MERCHANT = _query(
    "merchantId",
    _INT,
    "The store; may be left out when the key is bound to one store (a merchant key).",
)
_OFFSET = (
    _LANGUAGE,
    _query("offset", {"type": "integer", "minimum": 0}, "Items to skip."),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "Page size."),
)
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A repeated key returns the first answer instead of writing twice.",
    "schema": {"type": "string", "maxLength": 200},
}


@dataclasses.dataclass(frozen=True)
class Op:
    """What the document says about one route.

    ``kind``: ``read`` (served from the mirror's database, with freshness headers),
    ``write`` (forwarded to Booxi, the answer stored), ``live`` (passed through to Booxi)
    or ``own`` (the mirror's own routes; ``responses`` given in full). ``security``
    names alternative security schemes; ``/booking/v1`` routes get the API key's.
    """

    summary: str
    kind: str
    description: str = ""
    params: tuple[Json, ...] = ()
    body: str | None = None
    responses: Json | None = None
    security: tuple[str, ...] = ()  # alternatives; /booking/v1 routes: the API key


_WEBHOOK = Op(
    "Receive a Booxi webhook event",
    "own",
    "Authenticated by the shared secret (`Authorization: Bearer` or the configured "
    "header) and/or a Standard Webhooks signature (`webhook-id`, `webhook-timestamp`, "
    "`webhook-signature`). Stored in the inbox and applied before the 200.",
    body="`{eventId, eventType, createdOn, content{booking, clientLinks[]}}`.",
    responses={
        "200": {
            "description": "Stored and applied (or recognised as a duplicate).",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Outcome"}}},
        },
        "400": {"$ref": "#/components/responses/MirrorError"},
        "401": {"$ref": "#/components/responses/MirrorError"},
    },
    security=("webhookSecret", "webhookSignature"),
)


_FRESH_HEADERS: Json = {
    "Cache-Status": {"$ref": "#/components/headers/CacheStatus"},
    "Age": {"$ref": "#/components/headers/Age"},
    "X-Mirror-Synced-At": {"$ref": "#/components/headers/SyncedAt"},
    "X-Mirror-Coverage": {"$ref": "#/components/headers/Coverage"},
}
_MIRROR_ERROR = {"$ref": "#/components/responses/MirrorError"}
_QUEUE = Op(
    "A store's dispatch queue",
    "own",
    "A mirror extension outside Booxi's paths: the store's appointment requests that need "
    "a manager (no staff member assigned, or status `PendingStaffApproval` / "
    "`PendingClientApproval`; never cancelled), with `startsOn` in `from`..`to` (default: "
    "from now to `[sync] horizon_days` ahead), oldest request first (`createdOn`, then "
    "`bookingId`), `[api] page_size` a page. Each booking is Booxi's, as the mirror holds "
    "it (client, `items`, `startsOn`); `services`, `staff` and `merchants` are the objects "
    "they name. Served from the mirror, kept fresh by the store's queue poll and webhooks. "
    "A store the key does not see is 404, as one the mirror does not know. Dispatch a "
    "request with `PUT /booking/v1/booking/{bookingId}` (`staffId`, `status`).",
    (
        _query("from", _TIME, "Requests for this instant or later (RFC 3339); default now."),
        _query("to", _TIME, "Requests for this instant or earlier; default the horizon."),
        _CURSOR,
    ),
    responses={
        "200": {
            "description": "`{bookings[], services[], staff[], merchants[], cursor}`.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Queue"}}},
            "headers": _FRESH_HEADERS,
        },
        "304": {"description": "Not modified (`If-None-Match`)."},
        "400": _MIRROR_ERROR,
        "401": _MIRROR_ERROR,
        "403": _MIRROR_ERROR,
        "404": _MIRROR_ERROR,
    },
    security=("bearer", "partnerKey"),
)


OPERATIONS: dict[str, Op] = {
    "calendar": Op(
        "A staff member's calendar",
        "read",
        "Booxi's `GET /calendar`: one calendar event per service item, the requested "
        "`include` objects once each, cursor paging, `from` and `to` inclusive. Without "
        "`cursor`, `staffId`, `from`, `to`, `eventType` and `include` are required. The "
        "mirror also answers ranges older than Booxi's 7-day limit from its history.",
        (
            _query("staffId", _INT, "The staff member."),
            _query("from", _TIME, "Start of the range (RFC 3339, UTC)."),
            _query("to", _TIME, "End of the range, inclusive."),
            _repeated("eventType", EVENT_TYPES, "Event types to return."),
            _repeated("include", INCLUDES, "Objects to include beside the events."),
            _LANGUAGE,
            _CURSOR,
        ),
    ),
    "booking-history": Op(
        "A client's bookings",
        "read",
        "Booxi's `GET /booking`: a client's history, cursor-paged. Without `cursor`, "
        "`clientId` is required. History before the mirror started is fetched from Booxi "
        "on first demand.",
        (
            _query("clientId", _INT, "The client."),
            _query("from", _TIME, "Bookings starting at or after this instant."),
            _query("to", _TIME, "Bookings starting at or before this instant."),
            _MERCHANT,
            _repeated("bookingMethod", BOOKING_METHODS, "Booking methods to return."),
            _query(
                "order",
                {"type": "string", "enum": ["Ascending", "Descending"], "default": "Ascending"},
                "Order by start time.",
            ),
            _LANGUAGE,
            _CURSOR,
        ),
    ),
    "booking": Op("One booking", "read", "`{booking, groupEvents[]}`.", (_LANGUAGE,)),
    "merchant-list": Op(
        "Stores",
        "read",
        "Offset-paged: `{offset, limit, total, items[]}`.",
        (
            _query("groupId", _INT, "Only the stores of this group."),
            _LANGUAGE,
            _query("offset", {"type": "integer", "minimum": 0}, "Items to skip."),
            _query("limit", {"type": "integer", "minimum": 1}, "Page size."),
        ),
    ),
    "merchant": Op("One store", "read", params=(_LANGUAGE,)),
    "staff-list": Op(
        "Staff members",
        "read",
        "`{staffs[], cursor}`. `moduleId`+`externalId` (e.g. `hr` and an employee number) "
        "find the staff linked to it; asked of Booxi when the mirror has not lately.",
        (_MERCHANT, *_MODULE, _query("status", _TEXT, "`Online` or `Offline`."), _CURSOR),
    ),
    "service-list": Op(
        "Services",
        "read",
        "`{services[], cursor}`. `moduleId`+`externalId` (e.g. `pos` and a SKU) find the "
        "services linked to it; asked of Booxi when the mirror has not lately.",
        (
            _MERCHANT,
            *_MODULE,
            _query("serviceCategoryId", _INT, "Only this category."),
            _CURSOR,
        ),
    ),
    "service-category-list": Op(
        "Service categories",
        "read",
        "`{serviceCategories[], cursor}`.",
        (_MERCHANT, *_MODULE, _CURSOR),
    ),
    "book-now-merchant": Op(
        "The store of a Book Now form",
        "read",
        "Booxi's `GET /merchant`: the store, bare. Which store: `merchantId`, else the "
        "key's store when it is bound to exactly one (a merchant key always is), else 400.",
        (_BOOK_NOW_MERCHANT, _LANGUAGE),
    ),
    "book-now-staff": Op(
        "The store's online staff (Book Now)",
        "read",
        "Booxi's `GET /staff`, offset-paged `{offset, limit, total, items[]}`, by id. "
        "`serviceId`: only those who perform it (asked of Booxi once, then kept for "
        "`[sync] reference_interval_s`).",
        (_BOOK_NOW_MERCHANT, _query("serviceId", _INT, "Only who performs it."), *_OFFSET),
    ),
    "book-now-services": Op(
        "The store's online services (Book Now)",
        "read",
        "Booxi's `GET /service`, offset-paged `{offset, limit, total, items[]}`, by id. "
        "`staffId`: only those the staff member performs (asked of Booxi once, then kept "
        "for `[sync] reference_interval_s`).",
        (
            _BOOK_NOW_MERCHANT,
            _query("staffId", _INT, "Only what this staff member performs."),
            _query(
                "bookingMethod",
                {"type": "string", "enum": list(BOOKING_METHODS)},
                "Only this booking method.",
            ),
            _query("keywords", _TEXT, "Only names containing this text (any case)."),
            *_OFFSET,
        ),
    ),
    "book-now-categories": Op(
        "The store's service categories (Book Now)",
        "read",
        "Booxi's `GET /serviceCategory`, offset-paged `{offset, limit, total, items[]}`.",
        (_BOOK_NOW_MERCHANT, *_OFFSET),
    ),
    "client-search": Op(
        "Find clients",
        "read",
        "By `moduleId`+`externalId`, or `merchantId` with `firstName`+`lastName`, `email` "
        "or `phoneNumber`; one criterion family per request. Not paged: the first matches. "
        "`{clients[], clientLinks[]}`.",
        (
            *_MODULE,
            _MERCHANT,
            _query("firstName", _TEXT, "With `lastName`."),
            _query("lastName", _TEXT, "With `firstName`."),
            _query("email", _TEXT, "E-mail address."),
            _query("phoneNumber", _TEXT, "Home or mobile phone."),
        ),
    ),
    "client": Op("One client", "read"),
    "client-module-link": Op("A client's link to an external module", "read", "`{link, client}`."),
    "booking-create": Op(
        "Create a booking",
        "write",
        "Forwarded to Booxi; Booxi's answer is returned as is and stored at once. Never "
        "retried automatically.",
        (_IDEMPOTENCY,),
        body="Booxi's booking: `merchantId`, `bookingMethod`, `startsOn`, `status`, "
        "`staffId`, `items[{serviceId}]`, `client`.",
    ),
    "booking-update": Op(
        "Change a booking",
        "write",
        "Reschedule, reassign, cancel, presence, completion; forwarded to Booxi.",
        body="The fields of Booxi's booking to change.",
    ),
    "client-create": Op(
        "Create a client", "write", params=(_IDEMPOTENCY,), body="Booxi's client object."
    ),
    "client-update": Op("Change a client", "write", body="Booxi's client object."),
    "client-delete": Op(
        "Delete a client",
        "write",
        "Booxi refuses to delete a client with future bookings.",
        (_query("ignoreError", {"type": "boolean"}, "Passed to Booxi."),),
    ),
    "client-module-link-update": Op(
        "Link a client to an external module",
        "write",
        body="`{externalId, metadata}`.",
    ),
    "staff": Op("One staff member", "read", "Asked of Booxi when the mirror does not hold them."),
    "service": Op("One service", "read"),
    "service-category": Op("One service category", "read"),
    "book-now-customizations": Op(
        "What each staff member charges and takes for a service, live from Booxi",
        "live",
        params=(
            _query("serviceId", _INT, "The service.", required=True),
            _query("staffId", _INT, "Only this staff member."),
            _LANGUAGE,
        ),
    ),
    "service-availability": Op(
        "A service's availability, live from Booxi",
        "live",
        params=(
            _query("from", _TIME, "Start of the range.", required=True),
            _query("to", _TIME, "End of the range.", required=True),
            _query("staffId", _INT, "Only this staff member."),
            _LANGUAGE,
            _CURSOR,
        ),
    ),
    "availability-search": Op(
        "Search availability, live from Booxi",
        "live",
        "Needs only the read scope.",
        body="`{searchMode, merchantId, range{startsOn, endsOn}, bookingItems[{serviceId}], "
        "onlyIncludeStaffs[]}`.",
    ),
    "store-queue": _QUEUE,
    "webhook": _WEBHOOK,
    "webhook-put": dataclasses.replace(_WEBHOOK, summary="Receive a Booxi webhook event (PUT)"),
    "livez": Op(
        "The process answers",
        "own",
        "Checks nothing else: for liveness probes.",
        responses={"200": {"$ref": "#/components/responses/Ok"}},
    ),
    "healthz": Op(
        "The process and its database answer",
        "own",
        responses={
            "200": {"$ref": "#/components/responses/Ok"},
            "503": {"$ref": "#/components/responses/MirrorError"},
        },
    ),
    "readyz": Op(
        "Readiness: database, sync age, Booxi reachability",
        "own",
        "`ready` or `degraded` (sync older than `[api] staleness_s`, no sync yet, or Booxi "
        "unreachable at the latest attempts) answer 200: a degraded mirror still serves "
        "reads. `unready` (the database does not answer within 2 s) answers 503. Makes no "
        "call to Booxi.",
        responses={
            "200": {"$ref": "#/components/responses/Readiness"},
            "503": {"$ref": "#/components/responses/Readiness"},
        },
    ),
    "metrics": Op(
        "Prometheus metrics",
        "own",
        "Request latency per route, sync lag per store, webhook lag, Booxi calls and "
        "errors, rate-limiter waits.",
        responses={
            "200": {
                "description": "Prometheus text exposition (OpenMetrics if asked for).",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    ),
    "openapi": Op(
        "This document",
        "own",
        responses={
            "200": {
                "description": "OpenAPI 3.1.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    ),
}

_BOOXI_ERRORS = {
    "read": ("400", "401", "403", "404", "429", "502", "503"),
    "write": ("400", "401", "403", "404", "409", "413", "429", "502", "503"),
    "live": ("400", "401", "403", "404", "503"),
}
_ERROR_TEXT = {
    "400": "Malformed parameters or body.",
    "401": "No API key, an unknown one, or one in the other kind's header.",
    "403": "The key lacks the scope or the store, or is a merchant key on another route.",
    "404": "Not found, or not in the key's stores.",
    "409": "Booxi refused: a conflict (`error` names it).",
    "413": "The body is too large.",
    "429": "The key's budget of first-demand fills (`[api] fills_per_minute`, `fill_burst`) "
    "is spent: the object is not held and fetching it from Booxi would exceed it; "
    "`Retry-After` says when to try again.",
    "502": "Booxi refused a first-demand fill (its message quoted) or answered unreadably; "
    "on a write, the fill that checks a store-bound key's objects (`api.write_scope`).",
    "503": "Booxi is unreachable, too slow or limiting the mirror (fair use), and the mirror "
    "cannot answer alone; `Retry-After` says when to try again.",
}


def build_document(routes: Iterable[Route]) -> Json:
    """The OpenAPI 3.1 document of ``routes``."""
    paths: dict[str, Json] = {}
    for method, path, _handler, name in routes:
        template = _PLACEHOLDER.sub(r"{\1}", path)
        paths.setdefault(template, {})[method.lower()] = _operation(method, template, name)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "booxi-mirror",
            "version": __version__,
            "summary": "A local caching mirror of the Booxi booking API.",
            "description": (
                f"Booxi's own paths and JSON under `{API_PREFIX}`, served from the mirror's "
                "database (reads) or forwarded to Booxi (writes); errors there keep Booxi's "
                "shape. The mirror's own routes answer errors as `{error: {code, message, "
                "status}}`."
            ),
        },
        "paths": paths,
        "components": _COMPONENTS,
    }


@functools.cache
def document_bytes(routes: tuple[Route, ...]) -> bytes:
    """``build_document(routes)`` as served, built once per process."""
    return json.dumps(build_document(routes), indent=2).encode()


def _operation(method: str, path: str, name: str) -> Json:
    op = OPERATIONS.get(name, Op(name, "read" if path.startswith(API_PREFIX) else "own"))
    booxi = path.startswith(API_PREFIX + "/")
    operation: Json = {"operationId": name, "summary": op.summary}
    if op.description:
        operation["description"] = op.description
    operation["tags"] = ["booxi" if booxi else "mirror"]
    parameters = [
        {"name": param, "in": "path", "required": True, "schema": PATH_PARAMS.get(param, _TEXT)}
        for param in _PLACEHOLDER.findall(path)
    ]
    parameters += op.params
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None:
        operation["requestBody"] = {
            "required": True,
            "description": op.body,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    if op.responses is not None:
        operation["responses"] = op.responses
    else:
        ok: Json = {
            "description": "Booxi's JSON.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Booxi"}}},
        }
        if op.kind == "read":
            ok["description"] = "Booxi's JSON, as the mirror holds it."
            ok["headers"] = {
                "Cache-Status": {"$ref": "#/components/headers/CacheStatus"},
                "Age": {"$ref": "#/components/headers/Age"},
                "X-Mirror-Synced-At": {"$ref": "#/components/headers/SyncedAt"},
                "X-Mirror-Coverage": {"$ref": "#/components/headers/Coverage"},
                "X-Mirror-Covered-From": {"$ref": "#/components/headers/CoveredFrom"},
            }
        operation["responses"] = {"200": ok} | {
            code: {"$ref": f"#/components/responses/Booxi{code}"}
            for code in _BOOXI_ERRORS.get(op.kind, ())
        }
    security: tuple[str, ...] = ("bearer", "partnerKey") if booxi else op.security
    if name in MERCHANT_KEY_ROUTES:
        security += ("merchantKey",)
    if security:
        operation["security"] = [{scheme: []} for scheme in security]
    return operation


def _booxi_error(code: str) -> Json:
    response: Json = {
        "description": _ERROR_TEXT[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BooxiError"}}},
    }
    if code in ("429", "503"):
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return response


def _json_response(description: str, schema: str) -> Json:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_CHECK = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["ok", "degraded", "fail", "unknown"]}},
    "additionalProperties": True,
}

_COMPONENTS: Json = {
    "securitySchemes": {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "One of the `[[api.keys]]` keys: `Authorization: Bearer <key>`.",
        },
        "partnerKey": {
            "type": "apiKey",
            "in": "header",
            "name": "Booxi-PartnerKey",
            "description": "The same key where a Booxi client sends its partner key.",
        },
        "merchantKey": {
            "type": "apiKey",
            "in": "header",
            "name": "Booxi-APIKey",
            "description": 'A `kind = "merchant"` key, where a Booxi frontend sends a store\'s '
            "public key: one store, read-only, on the Book Now lists and availability only "
            "(403 elsewhere).",
        },
        "webhookSecret": {
            "type": "http",
            "scheme": "bearer",
            "description": "`[webhook] secret` (or in `[webhook] secret_header`).",
        },
        "webhookSignature": {
            "type": "apiKey",
            "in": "header",
            "name": "webhook-signature",
            "description": "Standard Webhooks signature with `[webhook] signing_secret`.",
        },
    },
    "schemas": {
        "Booxi": {"type": "object", "description": "Booxi's JSON object, as Booxi sends it."},
        "BooxiError": {
            "type": "object",
            "description": "Booxi's error shape, kept on every `/booking/v1` route.",
            "required": ["message", "code"],
            "properties": {
                "message": {"type": "string"},
                "code": {"type": "integer", "description": "The HTTP status."},
                "error": {
                    "type": "string",
                    "description": "On a 409, Booxi's name for the conflict, passed on as "
                    "Booxi sent it (not a closed list).",
                    "examples": list(CONFLICTS),
                },
            },
        },
        "MirrorError": {
            "type": "object",
            "description": "The mirror's own error shape, on its own routes.",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "status"],
                    "properties": {
                        "code": {"type": "string", "examples": ["not_found"]},
                        "message": {"type": "string"},
                        "status": {"type": "integer"},
                    },
                }
            },
        },
        "Queue": {
            "type": "object",
            "required": ["bookings", "services", "staff", "merchants", "cursor"],
            "properties": {
                "bookings": {"type": "array", "items": {"$ref": "#/components/schemas/Booxi"}},
                "services": {"type": "array", "items": {"$ref": "#/components/schemas/Booxi"}},
                "staff": {"type": "array", "items": {"$ref": "#/components/schemas/Booxi"}},
                "merchants": {"type": "array", "items": {"$ref": "#/components/schemas/Booxi"}},
                "cursor": {"type": ["string", "null"]},
            },
        },
        "Status": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "Readiness": {
            "type": "object",
            "required": ["status", "checks"],
            "properties": {
                "status": {"type": "string", "enum": ["ready", "degraded", "unready"]},
                "checks": {
                    "type": "object",
                    "required": ["database", "sync", "upstream"],
                    "properties": {"database": _CHECK, "sync": _CHECK, "upstream": _CHECK},
                },
            },
        },
        "Outcome": {
            "type": "object",
            "required": ["eventId", "outcome"],
            "properties": {
                "eventId": {"type": "string"},
                "outcome": {
                    "type": "string",
                    "enum": ["applied", "stale", "duplicate", "ignored"],
                },
            },
        },
    },
    "headers": {
        "CacheStatus": {
            "description": "RFC 9211: `booxi-mirror; hit`, `booxi-mirror; hit; detail=stale` "
            "(older than `[api] staleness_s`, or Booxi failing), `booxi-mirror; "
            "fwd=uri-miss; stored` (fetched from Booxi on first demand) or `booxi-mirror; "
            "hit; detail=partial` (a client search Booxi could not confirm).",
            "schema": {"type": "string"},
        },
        "Age": {
            "description": "Seconds since `X-Mirror-Synced-At`.",
            "schema": {"type": "integer", "minimum": 0},
        },
        "Coverage": {
            "description": "`partial`: the calendar range reaches further back than the "
            "mirror holds and than Booxi serves (7 days); what the mirror holds is answered.",
            "schema": {"type": "string", "enum": ["partial"]},
        },
        "CoveredFrom": {
            "description": "With `X-Mirror-Coverage: partial`: where the part the mirror "
            "vouches for starts.",
            "schema": {"type": "string", "format": "date-time"},
        },
        "SyncedAt": {
            "description": "The oldest last successful sync among the data the answer draws on.",
            "schema": {"type": "string", "format": "date-time"},
        },
    },
    "responses": {
        **{f"Booxi{code}": _booxi_error(code) for code in _ERROR_TEXT},
        "MirrorError": _json_response("An error, in the mirror's shape.", "MirrorError"),
        "Ok": _json_response('`{"status": "ok"}`.', "Status"),
        "Readiness": _json_response("Readiness and its checks.", "Readiness"),
    },
}
