"""Rendering the dashboard: its templates (Jinja2, autoescaped, shipped in the package),
the headers every page carries, and ``page()``, which wraps each handler: the session
(``api.dashboard.session``), the CSRF check of every ``POST``, and errors answered as
an HTML page (never a stack trace, never the JSON shapes of the API)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from api.auth import PRINCIPAL_KEY, Principal
from api.booxi_shape import BooxiShapedError
from api.dashboard import session
from api.errors import ApiError

log = logging.getLogger(__name__)

SIGN_IN_PATH = "/dashboard/sign-in"
# nothing from elsewhere: no script, font or image of another origin, no framing
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    429: "Too many requests",
    502: "Booxi refused",
    503: "Booxi unreachable",
}


class PageError(Exception):
    """An error to show as a page: ``status`` and a message for the reader."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("api.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters=FILTERS,
        default_helpers=False,
    )


def age(seconds: float | None) -> str:
    """``42 s``, ``5 min``, ``3 h 20 min``, ``2 d 4 h``; ``-`` for none."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"


def when(moment: dt.datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


FILTERS: dict[str, Callable[..., str]] = {"age": age, "when": when}


def render(
    request: web.Request, name: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    caller = request.get(PRINCIPAL_KEY)
    bound = request.cookies.get(session.COOKIE, "") if caller is not None else ""
    full = {
        "caller": caller,
        "csrf": session.csrf_token(request, bound) if bound else "",
        **context,
    }
    response = aiohttp_jinja2.render_template(name, request, full, status=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **SECURITY_HEADERS})


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    title = TITLES.get(status, "Error" if status < 500 else "Something went wrong")
    return render(
        request, "error.html", {"status": status, "title": title, "message": message}, status
    )


PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(
    handler: PageHandler | None = None, *, signed_in: bool = True, bound_to: str = session.COOKIE
) -> Any:
    """Wrap a dashboard handler (see the module docstring). ``signed_in``: a request
    without a valid session is sent to the sign-in page (a ``GET``) or refused (401);
    ``bound_to``: the cookie a ``POST``'s CSRF field must match."""

    def wrap(inner: PageHandler) -> Handler:
        @functools.wraps(inner)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                if signed_in:
                    caller = session.resolve(request)
                    if caller is None:
                        if request.method in ("GET", "HEAD"):
                            return see_other(SIGN_IN_PATH)
                        raise PageError(401, "Your session has ended: sign in again.")
                    request[PRINCIPAL_KEY] = caller
                if request.method == "POST":
                    form = await request.post()
                    session.check_post(request, form, request.cookies.get(bound_to, ""))
                return await inner(request)
            except (PageError, session.SignInError) as error:
                return error_page(request, error.status, error.message)
            except ApiError as error:  # api.dispatch_queue's QueueError among them
                return error_page(request, error.status, error.message)
            except BooxiShapedError as error:
                return error_page(request, error.status, error.message)
            except web.HTTPException as error:
                if error.status < 400:
                    raise
                return error_page(request, error.status, error.reason)
            except Exception as error:
                log.error(
                    "api.unhandled",
                    extra={"path": request.path, "method": request.method},
                    exc_info=(type(error), error, error.__traceback__),
                )
                return error_page(request, 500, "The dashboard failed to show this page.")

        return wrapped

    return wrap if handler is None else wrap(handler)


def principal_of(request: web.Request) -> Principal:
    """The signed-in key (``page()`` has set it)."""
    found = request.get(PRINCIPAL_KEY)
    if found is None:  # pragma: no cover - page() signs in first
        raise PageError(401, "Not signed in.")
    return found
