"""``create_app(settings)``: the simulator as an aiohttp application."""

from __future__ import annotations

import collections
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator import availability, bookings, calendars, clients, control, directory, links
from simulator.answers import event_content
from simulator.dialects import ActiveDialects
from simulator.faults import Faults
from simulator.generate import build_world
from simulator.keys import (
    DIALECTS,
    FAIR_USE,
    FAULT_RNG,
    FAULTS,
    REQUEST_LOG,
    SETTINGS,
    WEBHOOKS,
    WORLD,
)
from simulator.middleware import booxi_middleware
from simulator.ratelimit import FairUse
from simulator.settings import SimSettings
from simulator.webhooks import WebhookDispatcher

API = "/booking/v1"
MAX_BODY = 1024 * 1024
REQUEST_LOG_SIZE = 20_000

ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/calendar", calendars.get_calendar),
    ("GET", "/booking", bookings.list_bookings),
    ("POST", "/booking", bookings.create_booking),
    ("GET", "/booking/{bookingId}", bookings.get_booking),
    ("PUT", "/booking/{bookingId}", bookings.update_booking),
    ("GET", "/merchant", directory.get_merchant),
    ("GET", "/merchant/list", directory.list_merchants),
    ("GET", "/merchant/{merchantId}", directory.get_merchant_by_id),
    ("GET", "/staff", directory.book_now_staff),
    ("GET", "/staff/list", directory.list_staff),
    ("GET", "/staff/{staffId}", directory.get_staff_by_id),
    ("GET", "/staff/{staffId}/moduleLink/{moduleId}", links.get_staff_link),
    ("GET", "/service", directory.book_now_services),
    ("GET", "/service/list", directory.list_services),
    ("GET", "/service/{serviceId}/availability", availability.service_availability),
    ("GET", "/service/{serviceId}", directory.get_service_by_id),
    ("GET", "/service/{serviceId}/moduleLink/{moduleId}", links.get_service_link),
    ("GET", "/serviceCategory", directory.book_now_categories),
    ("GET", "/serviceCustomization", directory.book_now_customizations),
    ("GET", "/serviceCategory/list", directory.list_categories),
    ("GET", "/serviceCategory/{serviceCategoryId}", directory.get_category_by_id),
    ("POST", "/availability/search", availability.search_availability),
    ("GET", "/client", clients.search_clients),
    ("POST", "/client", clients.create_client),
    ("GET", "/client/{clientId}", clients.get_client),
    ("PUT", "/client/{clientId}", clients.update_client),
    ("DELETE", "/client/{clientId}", clients.delete_client),
    ("GET", "/client/{clientId}/moduleLink/{moduleId}", clients.get_module_link),
    ("PUT", "/client/{clientId}/moduleLink/{moduleId}", clients.put_module_link),
)

CONTROL_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/_sim/faults", control.get_faults),
    ("POST", "/_sim/faults", control.set_faults),
    ("DELETE", "/_sim/faults", control.reset_faults),
    ("GET", "/_sim/dialects", control.get_dialects),
    ("POST", "/_sim/dialects", control.set_dialects),
    ("DELETE", "/_sim/dialects", control.reset_dialects),
    ("POST", "/_sim/mutate", control.post_mutate),
    ("GET", "/_sim/state", control.get_state),
    ("GET", "/_sim/webhooks", control.get_webhooks),
    ("GET", "/_sim/requests", control.get_requests),
    ("DELETE", "/_sim/requests", control.clear_requests),
    ("POST", "/_sim/webhooks/drain", control.drain_webhooks),
)


def create_app(
    settings: SimSettings, *, clock: Callable[[], dt.datetime] | None = None
) -> web.Application:
    """A simulated Booxi: API under ``/booking/v1``, control API under ``/_sim/``.

    ``clock`` replaces the wall clock (tests); webhooks start with the app.
    """
    app = web.Application(middlewares=[booxi_middleware], client_max_size=MAX_BODY)
    world = build_world(settings)
    if clock is not None:
        world.clock = clock
    faults = Faults(rate_limit=settings.rate_limit)
    webhooks = WebhookDispatcher(
        settings.webhook_urls,
        faults=faults,
        rng=random.Random(settings.seed + 1),
        secret=settings.webhook_secret,
        signing_secret=settings.signing_secret,
    )
    active = ActiveDialects(settings.dialects)
    world.listeners.append(
        lambda event_type, content: webhooks.publish(event_type, event_content(active, content))
    )
    app[SETTINGS] = settings
    app[WORLD] = world
    app[FAULTS] = faults
    app[DIALECTS] = active
    app[FAIR_USE] = FairUse()
    app[FAULT_RNG] = random.Random(settings.seed + 2)
    app[WEBHOOKS] = webhooks
    app[REQUEST_LOG] = collections.deque(maxlen=REQUEST_LOG_SIZE)
    for method, path, handler in ROUTES:
        app.router.add_route(method, API + path, handler)
    for method, path, handler in CONTROL_ROUTES:
        app.router.add_route(method, path, handler)
    app.cleanup_ctx.append(_webhooks_ctx)
    return app


async def _webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[WEBHOOKS].start()
    yield
    await app[WEBHOOKS].close()
