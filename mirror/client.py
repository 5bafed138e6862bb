"""``BooxiClient``: Booxi's endpoints as typed methods, on top of ``mirror.booxi_http``.

Methods echo Booxi's paths and return its JSON unchanged; ``iter_*`` follow Booxi's
cursors (a follow-up sends ``cursor`` alone) or offsets. They check their arguments
before anything is sent, raising ``BooxiInvalidRequest``, because a 400 costs the
fair-use quota double. Reads are retried as ``BooxiHttp.request`` says; writes
(``create_*``, ``update_*``, ``put_*``, ``delete_*``) go once, at ``Priority.WRITE``.
Fetching only: no storage here (the poller joins the two).

Choices where ``booxi-api.md`` is silent or says "unknown":

- Times go out in UTC as ``YYYY-MM-DDTHH:MM:SSZ``, fractions of a second dropped;
  naive datetimes are refused.
- The calendar's 7-day rule is checked exactly as Booxi states it, to the second,
  against this client's ``clock``: a caller that wants slack for clock skew leaves it.
- ``include`` takes the five names of ``booxi-api.md`` (not ``None``): at least one.
- Offset-paged lists (``/merchant/list``, the Book Now ``/staff`` and ``/service``)
  take page sizes of 1 to 100 (Booxi's maximum is not public; the simulator's is 100).
  A page that brings no item ends the listing.
- ``search_clients`` enforces Booxi's documented rules (one criterion family per request,
  ``moduleId``+``externalId`` and ``firstName``+``lastName`` paired, ``merchantId`` for
  contact searches) and, as the simulator does, exactly one contact criterion.
- Path ids (booking ids, module ids) are percent-encoded; ``/``, ``.`` and ``..`` are
  refused. Messages never repeat a search value (they can be e-mails or phones).
"""

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Self
from urllib.parse import quote

import aiohttp

from mirror.booxi_errors import BooxiError, BooxiInvalidRequest
from mirror.booxi_http import BooxiHttp, Json, Response
from mirror.budget import Priority, RateBudget
from mirror.config import ENV_PREFIX, BooxiConfig
from mirror.errors import ConfigError
from mirror.vocabulary import (
    BOOKING_METHODS,
    EVENT_TYPES,
    ID_MESSAGE,
    INCLUDED_OBJECTS,
    MAX_BOOKING_ID,
    MAX_MODULE_ID,
    ORDERS,
    check_booking_id,
    check_module_id,
    is_id,
)

__all__ = ["BooxiClient", "Priority", "RateBudget", "Response"]

INCLUDES = INCLUDED_OBJECTS
CALENDAR_PAST_LIMIT = dt.timedelta(days=7)
MAX_PAGE_SIZE = 100


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BooxiClient(BooxiHttp):
    """Booxi's booking API, typed. See ``BooxiHttp`` for sessions, budget and retries.

    ``clock`` (timezone-aware wall time) is what the calendar's 7-day rule is checked
    against.
    """

    def __init__(
        self,
        base_url: str,
        partner_key: str,
        *,
        budget: RateBudget,
        timeout_s: float = 10,
        max_attempts: int = 4,
        session: aiohttp.ClientSession | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        super().__init__(
            base_url,
            partner_key,
            budget=budget,
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            session=session,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
        )
        self._clock = clock

    @classmethod
    def from_config(cls, booxi: BooxiConfig, budget: RateBudget | None = None) -> Self:
        """A client for the ``[booxi]`` section; a new budget from its limits if none given."""
        if booxi.partner_key is None:
            raise ConfigError(
                "[booxi] partner_key is not set: put it in the config file "
                f"or {ENV_PREFIX}BOOXI__PARTNER_KEY"
            )
        if budget is None:
            budget = RateBudget(booxi.requests_per_second, booxi.requests_per_minute)
        return cls(
            booxi.base_url,
            booxi.partner_key.get_secret_value(),
            budget=budget,
            timeout_s=booxi.timeout_s,
        )

    # ---- calendar and bookings ----------------------------------------------------

    def iter_calendar(
        self,
        staff_id: int,
        start: dt.datetime,
        end: dt.datetime,
        *,
        event_types: Iterable[str] = EVENT_TYPES,
        includes: Iterable[str] = INCLUDES,
        priority: Priority = Priority.POLL,
    ) -> AsyncIterator[Json]:
        """Every page (the whole JSON object) of ``GET /calendar`` over ``[start, end]``.

        Arguments are checked when this is called, before the first request.
        """
        params = [("staffId", _id("staff_id", staff_id))]
        start, end = _aware("start", start), _aware("end", end)
        if end < start:
            raise BooxiInvalidRequest("end must not be before start")
        earliest = self._clock().astimezone(dt.UTC).replace(microsecond=0) - CALENDAR_PAST_LIMIT
        if _floor(start) < earliest:
            raise BooxiInvalidRequest(
                "start may not be more than 7 days in the past (Booxi refuses it); "
                f"earliest now: {_wire(earliest)}"
            )
        params += [("from", _wire(start)), ("to", _wire(end))]
        params += [
            ("eventType", name) for name in _choices("event_types", event_types, EVENT_TYPES)
        ]
        params += [("include", name) for name in _choices("includes", includes, INCLUDES)]
        return self._pages("/calendar", params, priority)

    def iter_booking_history(
        self,
        client_id: int,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        merchant_id: int | None = None,
        booking_methods: Iterable[str] = (),
        order: str = "Ascending",
        priority: Priority = Priority.FILL,
    ) -> AsyncIterator[Json]:
        """Every page of ``GET /booking``: one client's bookings, ``startsOn`` in the range."""
        params = [("clientId", _id("client_id", client_id))]
        if start is not None:
            params.append(("from", _wire(_aware("start", start))))
        if end is not None:
            params.append(("to", _wire(_aware("end", end))))
        if start is not None and end is not None and end < start:
            raise BooxiInvalidRequest("end must not be before start")
        if merchant_id is not None:
            params.append(("merchantId", _id("merchant_id", merchant_id)))
        methods = _choices("booking_methods", booking_methods, BOOKING_METHODS, required=False)
        params += [("bookingMethod", name) for name in methods]
        if order not in ORDERS:
            raise BooxiInvalidRequest(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        params.append(("order", order))
        return self._pages("/booking", params, priority)

    def iter_store_bookings(
        self,
        merchant_id: int,
        *,
        start: dt.datetime,
        end: dt.datetime,
        booking_methods: Iterable[str] = (),
        priority: Priority = Priority.POLL,
    ) -> AsyncIterator[Json]:
        """Every page of ``GET /booking`` with ``merchantId`` and no ``clientId``: a store's
        bookings with ``startsOn`` in ``[start, end]``, those no staff member has taken
        included (they are on no calendar). **choice**: booxi-api.md reads the listing as
        "``clientId`` (or ``merchantId``)"; a Booxi that wants ``clientId`` refuses it
        (400, ``BooxiRejected``) and the caller does without (``mirror.store_queue``)."""
        if end < start:
            raise BooxiInvalidRequest("end must not be before start")
        params = [
            ("merchantId", _id("merchant_id", merchant_id)),
            ("from", _wire(_aware("start", start))),
            ("to", _wire(_aware("end", end))),
        ]
        methods = _choices("booking_methods", booking_methods, BOOKING_METHODS, required=False)
        params += [("bookingMethod", name) for name in methods]
        params.append(("order", "Ascending"))
        return self._pages("/booking", params, priority)

    async def get_booking(self, booking_id: str, *, priority: Priority = Priority.POLL) -> Json:
        """``GET /booking/{id}``: ``{"booking": ..., "groupEvents": [...]}``."""
        path = f"/booking/{_segment('booking_id', booking_id, MAX_BOOKING_ID)}"
        return await self._get_json(path, None, priority)

    async def create_booking(self, body: Mapping[str, Any]) -> Json:
        """``POST /booking``, sent once; Booxi's answer."""
        return await self._write_json("POST", "/booking", body)

    async def update_booking(self, booking_id: str, body: Mapping[str, Any]) -> Json:
        """``PUT /booking/{id}``, sent once; Booxi's answer."""
        path = f"/booking/{_segment('booking_id', booking_id, MAX_BOOKING_ID)}"
        return await self._write_json("PUT", path, body)

    # ---- directory ------------------------------------------------------------------

    def iter_merchants(
        self,
        *,
        group_id: int | None = None,
        page_size: int = 50,
        priority: Priority = Priority.POLL,
    ) -> AsyncIterator[Json]:
        """Every store of ``GET /merchant/list`` (offset-paged), one by one."""
        params = [] if group_id is None else [("groupId", _id("group_id", group_id))]
        return self._offset_items("/merchant/list", params, _page_size(page_size), priority)

    async def get_merchant(self, merchant_id: int, *, priority: Priority = Priority.POLL) -> Json:
        """``GET /merchant/{id}``: the store."""
        return await self._get_json(f"/merchant/{_id('merchant_id', merchant_id)}", None, priority)

    async def get_staff(self, staff_id: int, *, priority: Priority = Priority.POLL) -> Json:
        """``GET /staff/{id}``: the staff member (bare, as Booxi's example shows)."""
        return await self._get_json(f"/staff/{_id('staff_id', staff_id)}", None, priority)

    def iter_staff(
        self,
        *,
        merchant_id: int | None = None,
        module_id: str | None = None,
        external_id: str | None = None,
        priority: Priority = Priority.POLL,
    ) -> AsyncIterator[Json]:
        """Every staff member of ``GET /staff/list`` (cursor-paged ``staffs``); with
        ``module_id`` + ``external_id``, those linked to that external id."""
        params = _merchant(merchant_id) + _module(module_id, external_id)
        return self._items("/staff/list", params, "staffs", priority)

    def iter_services(
        self,
        *,
        merchant_id: int | None = None,
        module_id: str | None = None,
        external_id: str | None = None,
        priority: Priority = Priority.POLL,
    ) -> AsyncIterator[Json]:
        """Every service of ``GET /service/list`` (cursor-paged ``services``); with
        ``module_id`` + ``external_id``, those linked to that external id."""
        params = _merchant(merchant_id) + _module(module_id, external_id)
        return self._items("/service/list", params, "services", priority)

    async def get_staff_module_link(
        self, staff_id: int, module_id: str, *, priority: Priority = Priority.FILL
    ) -> Json:
        """``GET /staff/{id}/moduleLink/{moduleId}``: ``{"link": ..., "staff": ...}``."""
        return await self._get_json(_link_path(staff_id, module_id, "staff"), None, priority)

    async def get_service_module_link(
        self, service_id: int, module_id: str, *, priority: Priority = Priority.FILL
    ) -> Json:
        """``GET /service/{id}/moduleLink/{moduleId}``: ``{"link": ..., "service": ...}``."""
        return await self._get_json(_link_path(service_id, module_id, "service"), None, priority)

    # ---- Book Now lists (offset-paged) ------------------------------------------------

    def iter_book_now_staff(
        self,
        merchant_id: int,
        *,
        service_id: int | None = None,
        page_size: int = 50,
        priority: Priority = Priority.FILL,
    ) -> AsyncIterator[Json]:
        """Every item of ``GET /staff`` (Book Now: the store's online staff); with
        ``service_id``, those who perform it."""
        params = _merchant(merchant_id)
        if service_id is not None:
            params.append(("serviceId", _id("service_id", service_id)))
        return self._offset_items("/staff", params, _page_size(page_size), priority)

    def iter_book_now_services(
        self,
        merchant_id: int,
        *,
        staff_id: int | None = None,
        page_size: int = 50,
        priority: Priority = Priority.FILL,
    ) -> AsyncIterator[Json]:
        """Every item of ``GET /service`` (Book Now: the store's online services); with
        ``staff_id``, those the staff member performs."""
        params = _merchant(merchant_id)
        if staff_id is not None:
            params.append(("staffId", _id("staff_id", staff_id)))
        return self._offset_items("/service", params, _page_size(page_size), priority)

    def iter_service_categories(
        self, *, merchant_id: int | None = None, priority: Priority = Priority.POLL
    ) -> AsyncIterator[Json]:
        """Every category of ``GET /serviceCategory/list`` (``serviceCategories``)."""
        return self._items(
            "/serviceCategory/list", _merchant(merchant_id), "serviceCategories", priority
        )

    # ---- clients ----------------------------------------------------------------------

    async def search_clients(
        self,
        *,
        merchant_id: int | None = None,
        module_id: str | None = None,
        external_id: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        phone_number: str | None = None,
        priority: Priority = Priority.FILL,
    ) -> Json:
        """``GET /client``: ``{"clients": [...], "clientLinks": [...]}``, first matches only.

        Either ``module_id`` + ``external_id``, or ``merchant_id`` with one of
        ``first_name`` + ``last_name``, ``email`` or ``phone_number``.
        """
        given = {
            name: _text(name, value)
            for name, value in (
                ("moduleId", module_id),
                ("externalId", external_id),
                ("firstName", first_name),
                ("lastName", last_name),
                ("email", email),
                ("phoneNumber", phone_number),
            )
            if value is not None
        }
        if ("moduleId" in given) != ("externalId" in given):
            raise BooxiInvalidRequest("module_id and external_id go together")
        if ("firstName" in given) != ("lastName" in given):
            raise BooxiInvalidRequest("first_name and last_name go together")
        contact = [name for name in ("firstName", "email", "phoneNumber") if name in given]
        if "moduleId" in given and contact:
            raise BooxiInvalidRequest(
                "search by module_id + external_id or by contact details, not both"
            )
        if "moduleId" not in given and len(contact) != 1:
            raise BooxiInvalidRequest(
                "give module_id + external_id, or merchant_id with exactly one of "
                "first_name + last_name, email or phone_number"
            )
        params = _merchant(merchant_id)
        if contact and not params:
            raise BooxiInvalidRequest("merchant_id is required to search by contact details")
        params += list(given.items())
        return await self._get_json("/client", params, priority)

    async def get_client(self, client_id: int, *, priority: Priority = Priority.FILL) -> Json:
        """``GET /client/{id}``: ``{"client": ..., "clientLinks": [...]}``."""
        return await self._get_json(f"/client/{_id('client_id', client_id)}", None, priority)

    async def create_client(self, body: Mapping[str, Any]) -> Json:
        """``POST /client``, sent once; Booxi's answer."""
        return await self._write_json("POST", "/client", body)

    async def update_client(self, client_id: int, body: Mapping[str, Any]) -> Json:
        """``PUT /client/{id}``, sent once; Booxi's answer."""
        return await self._write_json("PUT", f"/client/{_id('client_id', client_id)}", body)

    async def delete_client(self, client_id: int) -> None:
        """``DELETE /client/{id}``, sent once (never retried)."""
        path = f"/client/{_id('client_id', client_id)}"
        await self._send_checked("DELETE", path, None, None, Priority.WRITE)

    async def get_client_module_link(
        self, client_id: int, module_id: str, *, priority: Priority = Priority.FILL
    ) -> Json:
        """``GET /client/{id}/moduleLink/{moduleId}``: ``{"link": ..., "client": ...}``."""
        return await self._get_json(_link_path(client_id, module_id), None, priority)

    async def put_client_module_link(
        self, client_id: int, module_id: str, body: Mapping[str, Any]
    ) -> Json:
        """``PUT /client/{id}/moduleLink/{moduleId}``, sent once; Booxi's answer."""
        return await self._write_json("PUT", _link_path(client_id, module_id), body)

    # ---- paging -----------------------------------------------------------------------

    async def _offset_items(
        self, path: str, params: list[tuple[str, str]], limit: int, priority: Priority
    ) -> AsyncIterator[Json]:
        """Every item of an offset-paged list. Tolerant: ``items`` absent or null is an
        empty page; ``total`` may be absent or a numeric string (the listing then ends
        on a page shorter than asked)."""
        offset = 0
        while True:
            paging = [("offset", str(offset)), ("limit", str(limit))]
            page = await self._get_json(path, params + paging, priority)
            items, total = page.get("items"), _count(page.get("total"))
            if items is None:
                items = []
            if not isinstance(items, list):
                raise BooxiError(f"Booxi answered GET {path} without an items list")
            for item in items:
                yield item
            offset += len(items)
            if not items or (offset >= total if total is not None else len(items) < limit):
                return


def _count(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


# ---- argument checks --------------------------------------------------------------


def _id(name: str, value: object) -> str:
    """A Booxi integer id as sent; ``BooxiInvalidRequest`` unless a positive integer."""
    if not is_id(value):
        raise BooxiInvalidRequest(ID_MESSAGE.format(name=name))
    return str(value)


def _merchant(merchant_id: int | None) -> list[tuple[str, str]]:
    return [] if merchant_id is None else [("merchantId", _id("merchant_id", merchant_id))]


def _segment(name: str, value: object, max_length: int) -> str:
    """A string id for a path segment (a booking or module id), percent-encoded."""
    check = check_booking_id if max_length == MAX_BOOKING_ID else check_module_id
    try:
        return quote(check(name, value), safe="")
    except ValueError as error:
        raise BooxiInvalidRequest(str(error)) from None


def _link_path(ident: int, module_id: str, kind: str = "client") -> str:
    module = _segment("module_id", module_id, MAX_MODULE_ID)
    return f"/{kind}/{_id(f'{kind}_id', ident)}/moduleLink/{module}"


def _module(module_id: str | None, external_id: str | None) -> list[tuple[str, str]]:
    """``moduleId`` + ``externalId`` search parameters: both or neither."""
    if (module_id is None) != (external_id is None):
        raise BooxiInvalidRequest("module_id and external_id go together")
    if module_id is None or external_id is None:
        return []
    if len(module_id) > MAX_MODULE_ID:
        raise BooxiInvalidRequest(f"module_id must be at most {MAX_MODULE_ID} characters")
    return [
        ("moduleId", _text("module_id", module_id)),
        ("externalId", _text("external_id", external_id)),
    ]


def _page_size(page_size: object) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise BooxiInvalidRequest("page_size must be a whole number")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BooxiInvalidRequest(f"page_size must be from 1 to {MAX_PAGE_SIZE}")
    return page_size


def _text(name: str, value: object) -> str:
    """A search value; never echoed in messages (it may be an e-mail or a phone)."""
    if not isinstance(value, str) or not value.strip():
        raise BooxiInvalidRequest(f"{name} must be a non-empty string")
    return value


def _aware(name: str, value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise BooxiInvalidRequest(
            f"{name} must be a timezone-aware datetime, e.g. datetime.now(UTC)"
        )
    return value


def _floor(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def _wire(moment: dt.datetime) -> str:
    """Booxi's form: UTC, whole seconds, ``Z``."""
    return _floor(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _choices(
    name: str, values: Iterable[str], allowed: tuple[str, ...], *, required: bool = True
) -> list[str]:
    """Names from ``allowed``, each once, in the order given."""
    if isinstance(values, str):
        raise BooxiInvalidRequest(f"{name} must be a list of names, not one string")
    chosen = list(dict.fromkeys(values))
    unknown = [value for value in chosen if value not in allowed]
    if unknown:
        raise BooxiInvalidRequest(
            f"{name}: unknown {', '.join(map(repr, unknown))}; valid: {', '.join(allowed)}"
        )
    if required and not chosen:
        raise BooxiInvalidRequest(f"{name} must not be empty; valid: {', '.join(allowed)}")
    return chosen
