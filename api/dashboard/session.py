"""Signing in to the dashboard, its session cookie, and CSRF protection.

**choice** (the session): the sign-in form posts an API key; it is looked up exactly as
the API's headers are (``api.auth.find_key``: every key compared in constant time).
Only a partner key with the ``read`` scope may sign in: a merchant key is a store's
public key, not an operator's. The cookie does not hold the key: it holds
``v1.<key name>.<issued at>.<MAC>``, the MAC an HMAC-SHA256, under a key derived from
this database's secret (``storage.mirror_secret``'s cursor key, so every replica of a
PostgreSQL mirror accepts it), of the name, the time and a digest of the key's current
value. Each request looks the key up by name again, so a key removed, changed or
narrowed in the configuration takes effect at once and rotating a key ends its
sessions. A session lasts ``SESSION_S`` (a working day); signing out clears the cookie
(a copy of the cookie kept elsewhere stays valid until it expires: the mirror keeps no
session table).

The cookie is ``HttpOnly``, ``SameSite=Strict``, ``Path=/``, and ``Secure`` when the
request came over HTTPS (TLS at the mirror, or ``X-Forwarded-Proto: https`` from a
proxy in front: that header only adds the flag, so trusting it costs nothing). A store's
mirror usually answers plain HTTP on the store's network, where a ``Secure`` cookie
would never be sent back.

**choice** (CSRF): every form carries a hidden ``csrf`` field, an HMAC (under a second
derived key) of the session cookie, or before signing in, of a random ``SameSite=Strict``
cookie set with the sign-in form (so an attacker cannot sign a browser in with their own
key either). Every ``POST`` is refused (403) unless the field matches, and unless its
``Origin`` (or, without one, its ``Referer``) names this host, when the browser sends
either. Neither keys nor cookies are ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from aiohttp import web

from api.auth import MERCHANT, Principal, find_key
from api.keys import CONFIG
from api.query import CURSOR_KEY

COOKIE = "booxi_mirror_session"
SIGN_IN_COOKIE = "booxi_mirror_sign_in"
SESSION_S = 12 * 3600
CLOCK_SKEW_S = 60  # replicas' clocks may differ a little
VERSION = "v1"


class SignInError(Exception):
    """A refused sign-in or session: ``status`` (401, 403) and a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _derived(request: web.Request, purpose: bytes) -> bytes:
    return hmac.new(
        request.app[CURSOR_KEY], b"booxi-mirror dashboard " + purpose, "sha256"
    ).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(request: web.Request, body: str, secret: str) -> str:
    digest = hashlib.sha256(secret.encode()).digest()
    return _b64(hmac.new(_derived(request, b"session"), body.encode() + digest, "sha256").digest())


def sign_in(request: web.Request, given: str) -> tuple[Principal, str]:
    """The principal of the key ``given`` and a new session token, or ``SignInError``."""
    keys = request.app[CONFIG].api.keys
    found = find_key(keys, given.strip())
    if found is None:
        raise SignInError(401, "Invalid API key.")
    _allowed(found)
    secret = next(k.key.get_secret_value() for k in keys if k.name == found.name)
    body = f"{VERSION}.{_b64(found.name.encode())}.{int(time.time())}"
    return found, f"{body}.{_mac(request, body, secret)}"


def _allowed(found: Principal) -> None:
    if found.kind == MERCHANT:
        raise SignInError(
            403, "This is a merchant key (a store's public key): sign in with a partner key."
        )
    if "read" not in found.scopes:
        raise SignInError(403, "This API key has no read scope.")


def resolve(request: web.Request) -> Principal | None:
    """The principal of the request's session cookie; None without a valid one."""
    token = request.cookies.get(COOKIE, "")
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION or not parts[2].isascii():
        return None
    try:
        name = _unb64(parts[1]).decode()
        issued = int(parts[2])
    except (ValueError, binascii.Error):
        return None
    age = time.time() - issued
    if not -CLOCK_SKEW_S <= age <= SESSION_S:
        return None
    for key in request.app[CONFIG].api.keys:
        if key.name == name:
            expected = _mac(request, ".".join(parts[:3]), key.key.get_secret_value())
            if not hmac.compare_digest(expected.encode(), parts[3].encode()):
                return None
            found = Principal.of(key)
            try:
                _allowed(found)
            except SignInError:
                return None
            return found
    return None


def csrf_token(request: web.Request, binding: str) -> str:
    """The CSRF field's value for forms of the session (or sign-in cookie) ``binding``."""
    return _b64(hmac.new(_derived(request, b"csrf"), binding.encode(), "sha256").digest())


def binding(request: web.Request) -> str:
    """What the forms of this request are bound to: the session cookie, else the
    sign-in cookie (empty when there is neither)."""
    return request.cookies.get(COOKIE) or request.cookies.get(SIGN_IN_COOKIE, "")


def new_sign_in_nonce() -> str:
    return secrets.token_urlsafe(24)


def check_post(request: web.Request, form: Mapping[str, object], bound_to: str) -> None:
    """403 (``SignInError``) unless the form's ``csrf`` field is the one of ``bound_to``
    and the request comes from this host's pages (see the module docstring)."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if source is not None and (source == "null" or urlsplit(source).netloc != request.host):
        raise SignInError(403, "This form was sent from another site: refused.")
    given = form.get("csrf")
    expected = csrf_token(request, bound_to)
    if not bound_to or not isinstance(given, str) or not given.isascii():
        raise SignInError(403, "The form's security token is missing: reload the page.")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise SignInError(403, "The form's security token is not valid: reload the page.")


def _secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, name: str) -> None:
    response.del_cookie(name, path="/", httponly=True, samesite="Strict", secure=_secure(request))
