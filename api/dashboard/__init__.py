"""The store dashboard (issue #12): server-rendered HTML at ``/`` for a store's
operators and managers, behind the API's keys.

- ``api.dashboard.session``: signing in with an API key, the session cookie, CSRF;
- ``api.dashboard.render``: templates (``templates/``, Jinja2, autoescaped), security
  headers, ``page()`` (session, CSRF, errors as HTML pages);
- ``api.dashboard.panels``: what the pages show, read through the app's reader;
- ``api.dashboard.pages``: the handlers;
- ``api.dashboard.dispatching``: the dispatch queue and its actions (``api.dispatch_queue``).

Public: ``setup(app)`` adds the routes (``ROUTES``) and ``/static/`` (the stylesheet:
no asset comes from elsewhere, so it works offline).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from api.dashboard import dispatching, pages
from api.dashboard.render import setup_templates

STATIC = Path(__file__).parent / "static"

ROUTES: tuple[tuple[str, str, Handler, str], ...] = (
    ("GET", "/", pages.home, "dashboard"),
    ("GET", "/dashboard/sign-in", pages.sign_in_form, "dashboard-signin-form"),
    ("POST", "/dashboard/sign-in", pages.sign_in, "dashboard-signin"),
    ("POST", "/dashboard/sign-out", pages.sign_out, "dashboard-signout"),
    ("GET", "/dashboard/staff/{staffId}", pages.staff_week, "dashboard-staff-week"),
    ("GET", "/dashboard/clients", pages.find_client, "dashboard-find-client"),
    ("GET", "/dashboard/clients/{clientId}", pages.client_history, "dashboard-client"),
    ("POST", "/dashboard/queue/{bookingId}", dispatching.act, "dashboard-dispatch"),
)


def setup(app: web.Application) -> None:
    """The dashboard's templates, routes and stylesheet on ``app``."""
    setup_templates(app)
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, path, handler, name=name)
    app.router.add_static("/static/", STATIC, name="dashboard-static")
