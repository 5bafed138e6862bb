"""Every route of the mirror, in one table: (method, path, handler, name)."""

from __future__ import annotations

from aiohttp.typedefs import Handler

from api import (
    book_now,
    calendars,
    clients,
    directory,
    dispatch_queue,
    history,
    ops,
    webhooks,
    writes,
)
from api.booxi_shape import API_PREFIX as B

ROUTES: tuple[tuple[str, str, Handler, str], ...] = (
    # reads, from storage (first-demand fill from Booxi where not covered)
    ("GET", B + "/calendar", calendars.get_calendar, "calendar"),
    ("GET", B + "/booking", history.list_bookings, "booking-history"),
    ("GET", B + "/booking/{bookingId}", history.get_booking, "booking"),
    ("GET", B + "/merchant/list", directory.list_merchants, "merchant-list"),
    ("GET", B + "/merchant/{merchantId}", directory.get_merchant, "merchant"),
    ("GET", B + "/staff/list", directory.list_staff, "staff-list"),
    ("GET", B + "/service/list", directory.list_services, "service-list"),
    ("GET", B + "/serviceCategory/list", directory.list_categories, "service-category-list"),
    ("GET", B + "/staff/{staffId}", directory.get_staff, "staff"),
    ("GET", B + "/service/{serviceId}", directory.get_service, "service"),
    (
        "GET",
        B + "/serviceCategory/{serviceCategoryId}",
        directory.get_category,
        "service-category",
    ),
    # Book Now lists (offset-paged; also open to merchant keys, see api.auth)
    ("GET", B + "/merchant", book_now.get_merchant, "book-now-merchant"),
    ("GET", B + "/staff", book_now.list_staff, "book-now-staff"),
    ("GET", B + "/service", book_now.list_services, "book-now-services"),
    ("GET", B + "/serviceCategory", book_now.list_categories, "book-now-categories"),
    ("GET", B + "/client", clients.search_clients, "client-search"),
    ("GET", B + "/client/{clientId}", clients.get_client, "client"),
    (
        "GET",
        B + "/client/{clientId}/moduleLink/{moduleId}",
        clients.get_module_link,
        "client-module-link",
    ),
    # writes, forwarded to Booxi; live pass-through
    ("POST", B + "/booking", writes.create_booking, "booking-create"),
    ("PUT", B + "/booking/{bookingId}", writes.update_booking, "booking-update"),
    ("POST", B + "/client", writes.create_client, "client-create"),
    ("PUT", B + "/client/{clientId}", writes.update_client, "client-update"),
    ("DELETE", B + "/client/{clientId}", writes.delete_client, "client-delete"),
    (
        "PUT",
        B + "/client/{clientId}/moduleLink/{moduleId}",
        writes.put_module_link,
        "client-module-link-update",
    ),
    (
        "GET",
        B + "/service/{serviceId}/availability",
        writes.service_availability,
        "service-availability",
    ),
    ("POST", B + "/availability/search", writes.search_availability, "availability-search"),
    (
        "GET",
        B + "/serviceCustomization",
        writes.service_customizations,
        "book-now-customizations",
    ),
    # the mirror's own
    (
        "GET",
        dispatch_queue.PATH,
        dispatch_queue.get_queue,
        dispatch_queue.ROUTE_NAME,
    ),  # a store's dispatch queue
    ("POST", "/webhooks/booxi", webhooks.receive, "webhook"),
    ("PUT", "/webhooks/booxi", webhooks.receive, "webhook-put"),
    ("GET", "/livez", ops.livez, "livez"),
    ("GET", "/healthz", ops.healthz, "healthz"),
    ("GET", "/readyz", ops.readyz, "readyz"),
    ("GET", "/metrics", ops.metrics, "metrics"),
    ("GET", "/openapi.json", ops.openapi, "openapi"),
)
