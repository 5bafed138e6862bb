"""Who calls: every ``/booking/v1`` request presents one of the ``[[api.keys]]``.

Two kinds of key, as Booxi has two (``[[api.keys]] kind``):

- ``partner`` (the default) comes as ``Authorization: Bearer <key>`` or
  ``Booxi-PartnerKey: <key>``, so a backend written for Booxi only changes its base
  URL and key;
- ``merchant`` comes as ``Booxi-APIKey: <key>``, where a Booxi frontend sends a store's
  public key. It is bound to one store, read-only, and allowed only on the routes
  Booxi opens to the public key (``MERCHANT_KEY_ROUTES``: the Book Now lists and
  availability); on any other route it gets 403.

A key presented in the other kind's header is refused (401), as an unknown key is.
**choice**: when several key headers come, the first of ``Authorization: Bearer``,
``Booxi-PartnerKey``, ``Booxi-APIKey`` is the one checked. Keys are compared in
constant time and never logged. A key sees only its stores, and acts only with its
scopes: ``read`` for ``GET`` (and the read-only ``POST``s), ``write`` for the rest.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac

from aiohttp import web

from api.booxi_shape import BooxiShapedError
from mirror.config import ApiKey

PARTNER = "partner"
MERCHANT = "merchant"
MERCHANT_HEADER = "Booxi-APIKey"
PARTNER_HEADER = "Booxi-PartnerKey"
# route names (api.routes) Booxi serves to a store's public key
MERCHANT_KEY_ROUTES = frozenset(
    {
        "book-now-merchant",
        "book-now-staff",
        "book-now-services",
        "book-now-categories",
        "book-now-customizations",
        "service-availability",
        "availability-search",
    }
)


@dataclasses.dataclass(frozen=True)
class Principal:
    """The caller: the key's name, its stores (None = every store), scopes and kind."""

    name: str
    merchant_ids: frozenset[int] | None
    scopes: frozenset[str]
    retain_pii: bool = True
    kind: str = PARTNER

    @classmethod
    def of(cls, key: ApiKey) -> Principal:
        stores = (
            None
            if key.merchant_ids == ("*",)
            else frozenset(m for m in key.merchant_ids if isinstance(m, int))
        )
        return cls(key.name, stores, frozenset(key.scopes), key.retain_pii, key.kind)

    @functools.cached_property
    def sight(self) -> tuple[tuple[int, ...] | None, bool, str]:
        """What decides which answers it may share (``api.ready``'s key): its stores,
        whether it keeps personal data, and its kind."""
        stores = None if self.merchant_ids is None else tuple(sorted(self.merchant_ids))
        return (stores, self.retain_pii, self.kind)

    def sees(self, merchant_id: int | None) -> bool:
        return self.merchant_ids is None or (
            merchant_id is not None and merchant_id in self.merchant_ids
        )

    @property
    def single_store(self) -> int | None:
        """The key's store when it is bound to exactly one."""
        if self.merchant_ids is not None and len(self.merchant_ids) == 1:
            return next(iter(self.merchant_ids))
        return None

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise BooxiShapedError(403, f"this API key has no {scope} scope")

    def require_route(self, route_name: str | None) -> None:
        """403 for a merchant key on a route Booxi does not open to a store's public key."""
        if self.kind == MERCHANT and route_name not in MERCHANT_KEY_ROUTES:
            raise BooxiShapedError(
                403,
                "a merchant key (Booxi-APIKey) may only call the Book Now lists and "
                "availability; this route needs a partner key",
            )


PRINCIPAL_KEY = web.RequestKey("principal", Principal)


def authenticate(keys: tuple[ApiKey, ...], request: web.Request) -> Principal:
    presented = _presented_key(request)
    if presented is None:
        raise BooxiShapedError(
            401,
            "Missing API key: send Authorization: Bearer <key> or Booxi-PartnerKey, "
            "or a merchant key as Booxi-APIKey",
        )
    given, kind = presented
    match = find_key(keys, given)
    if match is None:
        raise BooxiShapedError(401, "Invalid API key")
    if match.kind != kind:
        where = MERCHANT_HEADER if match.kind == MERCHANT else f"{PARTNER_HEADER} or Bearer"
        raise BooxiShapedError(401, f"Invalid API key for this header: send it as {where}")
    return match


def find_key(keys: tuple[ApiKey, ...], given: str) -> Principal | None:
    """The principal of the key ``given``, or None: every key compared in constant time
    (timing tells nothing). The API's headers and the dashboard's sign-in use it."""
    candidate = given.encode()
    match = None
    for secret, principal in _prepared(keys):
        if hmac.compare_digest(secret, candidate):
            match = principal
    return match


def _prepared(keys: tuple[ApiKey, ...]) -> tuple[tuple[bytes, Principal], ...]:
    """Each key's secret as bytes and its ``Principal``, made once per configuration
    rather than on every request (``Principal`` is frozen: one is shared by requests).
    Remembered by the keys' identity: hashing the models on every request cost more
    than the comparison."""
    if _last.keys is not keys:
        _last.prepared = tuple((k.key.get_secret_value().encode(), Principal.of(k)) for k in keys)
        _last.keys = keys
    return _last.prepared


@dataclasses.dataclass
class _Prepared:
    keys: tuple[ApiKey, ...] | None = None
    prepared: tuple[tuple[bytes, Principal], ...] = ()


_last = _Prepared()


def principal(request: web.Request) -> Principal:
    found = request.get(PRINCIPAL_KEY)
    if found is None:  # pragma: no cover - the middleware sets it on every API route
        raise BooxiShapedError(401, "Missing API key")
    return found


KEY_HEADERS = ("Authorization", PARTNER_HEADER, MERCHANT_HEADER)


def _presented_key(request: web.Request) -> tuple[str, str] | None:
    """The key presented and the kind its header is for. A key header that is not
    ASCII (no key is) is refused as an invalid key: 401, never a decoding error."""
    headers = request.headers
    for name in KEY_HEADERS:
        for value in headers.getall(name, ()):
            if not value.isascii():
                raise BooxiShapedError(401, f"Invalid API key: the {name} header must be ASCII")
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if value and scheme.lower() == "bearer":
        return value, PARTNER
    partner = headers.get(PARTNER_HEADER, "").strip()
    if partner:
        return partner, PARTNER
    merchant = headers.get(MERCHANT_HEADER, "").strip()
    return (merchant, MERCHANT) if merchant else None
