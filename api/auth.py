"""Who calls: every ``/booking/v1`` request presents one of the ``[[api.keys]]``.

The key comes as ``Authorization: Bearer <key>`` or ``Booxi-PartnerKey: <key>`` (so a
frontend written for Booxi only changes its base URL and key). Keys are compared in
constant time and never logged. A key sees and writes only its stores, and only with
its scopes: ``read`` for ``GET``, ``write`` for the rest.
"""

from __future__ import annotations

import dataclasses
import hmac

from aiohttp import web

from api.booxi_shape import BooxiShapedError
from mirror.config import ApiKey


@dataclasses.dataclass(frozen=True)
class Principal:
    """The caller: the key's name, its stores (None = every store) and scopes."""

    name: str
    merchant_ids: frozenset[int] | None
    scopes: frozenset[str]
    retain_pii: bool = True

    @classmethod
    def of(cls, key: ApiKey) -> Principal:
        stores = (
            None
            if key.merchant_ids == ("*",)
            else frozenset(m for m in key.merchant_ids if isinstance(m, int))
        )
        return cls(key.name, stores, frozenset(key.scopes), key.retain_pii)

    def sees(self, merchant_id: int | None) -> bool:
        return self.merchant_ids is None or (
            merchant_id is not None and merchant_id in self.merchant_ids
        )

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise BooxiShapedError(403, f"this API key has no {scope} scope")


PRINCIPAL_KEY = web.RequestKey("principal", Principal)


def authenticate(keys: tuple[ApiKey, ...], request: web.Request) -> Principal:
    given = _presented_key(request)
    if given is None:
        raise BooxiShapedError(
            401, "Missing API key: send Authorization: Bearer <key> or Booxi-PartnerKey"
        )
    match = None
    for key in keys:  # compare with every key, so timing tells nothing about which
        if hmac.compare_digest(key.key.get_secret_value().encode(), given.encode()):
            match = key
    if match is None:
        raise BooxiShapedError(401, "Invalid API key")
    return Principal.of(match)


def principal(request: web.Request) -> Principal:
    found = request.get(PRINCIPAL_KEY)
    if found is None:  # pragma: no cover - the middleware sets it on every API route
        raise BooxiShapedError(401, "Missing API key")
    return found


def _presented_key(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    partner = request.headers.get("Booxi-PartnerKey", "").strip()
    return partner or None
