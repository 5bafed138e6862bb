"""The dashboard's pages: sign-in and sign-out, the overview at ``/`` (freshness, the
dispatch queue, inbox failures, the last audit), a staff member's week and a client's
history."""

from __future__ import annotations

import datetime as dt
import functools

from aiohttp import web

from api.dashboard import dispatching, panels, session
from api.dashboard.render import (
    SIGN_IN_PATH,
    PageError,
    page,
    principal_of,
    render,
    see_other,
)
from api.keys import CONFIG, READER
from mirror.vocabulary import MAX_ID
from storage.times import utcnow

HOME = "/"
FIRST_DAY, LAST_DAY = dt.date(1970, 1, 12), dt.date(2199, 12, 20)


# ---- signing in and out -----------------------------------------------------------------
@page(signed_in=False)
async def sign_in_form(request: web.Request) -> web.StreamResponse:
    """The sign-in form, bound (CSRF) to a random cookie set with it."""
    if session.resolve(request) is not None:
        return see_other(HOME)
    return _sign_in_page(request, "", 200)


def _sign_in_page(request: web.Request, message: str, status: int) -> web.Response:
    nonce = request.cookies.get(session.SIGN_IN_COOKIE) or session.new_sign_in_nonce()
    context = {"csrf_sign_in": session.csrf_token(request, nonce), "message": message}
    response = render(request, "sign_in.html", context, status)
    session.set_cookie(response, request, session.SIGN_IN_COOKIE, nonce, 3600)
    return response


@page(signed_in=False, bound_to=session.SIGN_IN_COOKIE)
async def sign_in(request: web.Request) -> web.StreamResponse:
    """Check the key posted (CSRF checked by ``page``), set the session cookie."""
    form = await request.post()
    given = form.get("key")
    try:
        if not isinstance(given, str) or not given.strip():
            raise session.SignInError(401, "Enter an API key.")
        _caller, token = session.sign_in(request, given)
    except session.SignInError as error:
        return _sign_in_page(request, error.message, error.status)
    response = see_other(HOME)
    session.set_cookie(response, request, session.COOKIE, token, session.SESSION_S)
    session.clear_cookie(response, request, session.SIGN_IN_COOKIE)
    return response


@page(signed_in=False)
async def sign_out(request: web.Request) -> web.StreamResponse:
    """Clear the session cookie (CSRF checked by ``page``: no one signs you out)."""
    response = see_other(SIGN_IN_PATH)
    session.clear_cookie(response, request, session.COOKIE)
    return response


# ---- the overview -----------------------------------------------------------------------
@page
async def home(request: web.Request) -> web.StreamResponse:
    caller = principal_of(request)
    config = request.app[CONFIG]
    stores = panels.store_scope(caller, config)
    overview = await request.app[READER].run(
        functools.partial(
            panels.read_overview,
            stores=stores,
            staleness_s=config.api.staleness_s,
            now=utcnow(),
            every_store=caller.merchant_ids is None,
        )
    )
    context = {
        "overview": overview,
        "queues": await dispatching.read_queues(request, overview),
        "can_dispatch": "write" in caller.scopes,
        "done": dispatching.confirmation(
            request.query.get("done", ""), request.query.get("booking", "")
        ),
    }
    return render(request, "home.html", context)


# ---- a staff member's week --------------------------------------------------------------
@page
async def staff_week(request: web.Request) -> web.StreamResponse:
    caller = principal_of(request)
    staff_id = _ident(request.match_info["staffId"], "staff id")
    try:
        day = dt.date.fromisoformat(request.query.get("week") or utcnow().date().isoformat())
    except ValueError:
        raise PageError(400, "week must be a date, YYYY-MM-DD.") from None
    if not FIRST_DAY <= day <= LAST_DAY:  # the instants the mirror takes (storage.times)
        raise PageError(400, f"week must be from {FIRST_DAY} to {LAST_DAY}.")
    monday = panels.week_start(day)
    config = request.app[CONFIG]
    week = await request.app[READER].run(
        panels.read_week, staff_id, monday, caller, config.api.staleness_s, utcnow()
    )
    if week is None:
        raise PageError(404, f"Staff member {staff_id} not found.")
    context = {
        "week": week,
        "previous": (monday - dt.timedelta(days=7)).isoformat(),
        "next": (monday + dt.timedelta(days=7)).isoformat(),
    }
    return render(request, "week.html", context)


# ---- a client's history -----------------------------------------------------------------
@page
async def client_history(request: web.Request) -> web.StreamResponse:
    caller = principal_of(request)
    client_id = _ident(request.match_info["clientId"], "client id")
    history = await request.app[READER].run(panels.read_history, client_id, caller)
    if history is None:
        raise PageError(404, f"Client {client_id} not found.")
    return render(request, "client.html", {"history": history, "shown": panels.shown_time})


@page
async def find_client(request: web.Request) -> web.StreamResponse:
    """The overview's "client history" form (``?clientId=``): to the client's page."""
    client_id = _ident(request.query.get("clientId", "").strip(), "client id")
    return see_other(f"/dashboard/clients/{client_id}")


def _ident(raw: str, what: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 16 or not 0 < int(raw) < MAX_ID:
        raise PageError(400, f"The {what} must be a positive whole number.")
    return int(raw)
