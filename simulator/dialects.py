"""Dialects: other plausible readings of Booxi where its public record is silent.

The simulator is one reading of Booxi, not Booxi. Where ``booxi-api.md`` says
**choice** or **unknown**, a dialect plays another plausible variant, so a client can
be tested against each. Without a dialect the simulator answers as it always has.
The names are a contract (tests and ``booxi-mirror sim --dialect`` use them):

- ``write-bare``: ``POST``/``PUT /booking`` answer the bare booking (default
  ``{"booking", "groupEvents"}``); ``POST``/``PUT /client`` the bare client (default
  ``{"client", "clientLinks"}``); ``PUT /client/{id}/moduleLink/{m}`` the bare link
  (default ``{"link", "client"}``). Booxi: "unknown".
- ``history-range-required``: ``GET /booking`` without a cursor answers 400 when
  ``from`` or ``to`` is missing, or when ``to - from`` exceeds 366 days (default:
  both optional, no limit). Booxi: "treat both as required; longest range unknown".
- ``page-size-1``, ``page-size-2``, ``page-size-50``: cursor-paged lists (calendar,
  history, ``/staff/list``, ``/service/list``, ``/serviceCategory/list``, service
  availability) use that page size (default: ``SimSettings.page_size``).
- ``offset-limit-10``: offset lists (``/merchant/list``, Book Now ``/staff``,
  ``/service``, ``/serviceCategory``) default ``limit`` to 10 (default: the page
  size); the maximum stays 100.
- ``cursor-absent``: the last page of a cursor-paged list has no ``cursor`` key;
  ``cursor-empty``: it answers ``"cursor": ""`` (default ``"cursor": null``).
- ``lists-null``: empty top-level lists of calendar, history, booking and client
  answers are sent as ``null`` (``"groupEvents": null``, ``"clientLinks": null``...),
  and ``GET /booking/{id}`` leaves ``groupEvents`` out when it is empty. Lists
  nested inside objects (``tags``, ``attendees``) are left as they are.
- ``unknown-fields``: every booking, client, staff, service and merchant object of an
  answer, and the booking and client of a webhook's ``content``, carries
  ``"x-sim-extra": {"note": "unknown to the mirror"}``; every top-level answer
  envelope (not a bare object, not an error) carries ``"x-sim-envelope": 1``. A
  mirror must keep unknown fields verbatim. Added to a copy, never to the world.
- ``booking-list-client-only``: ``GET /booking`` without a cursor answers 400 unless
  ``clientId`` is given (default: ``clientId`` or ``merchantId``, a store's bookings).
  Booxi: "``clientId`` (or ``merchantId``)"; a mirror that lists a store's bookings to
  see its unassigned requests must live without that listing here.
- ``unassigned-absent``: a booking no staff member has taken leaves ``staffId``,
  ``staffFirstName`` and ``staffLastName`` out; ``unassigned-zero``: it answers
  ``"staffId": 0`` and empty names (default: ``null``). Booxi: unknown. In answers and
  webhooks, on copies.
- ``independent`` (a bundle): ``write-bare``, ``history-range-required``,
  ``page-size-2``, ``offset-limit-10``, ``cursor-absent``, ``lists-null``,
  ``unknown-fields`` and ``unassigned-absent`` together: a second, independent reading
  of Booxi's docs.

**choice**: dialects of one group (the page sizes; ``cursor-absent`` and
``cursor-empty``; ``unassigned-absent`` and ``unassigned-zero``) exclude each other:
asking for two is an error, not "last wins".
"""

from __future__ import annotations

from collections.abc import Iterable

WRITE_BARE = "write-bare"
HISTORY_RANGE_REQUIRED = "history-range-required"
OFFSET_LIMIT_10 = "offset-limit-10"
CURSOR_ABSENT = "cursor-absent"
CURSOR_EMPTY = "cursor-empty"
LISTS_NULL = "lists-null"
UNKNOWN_FIELDS = "unknown-fields"
BOOKING_LIST_CLIENT_ONLY = "booking-list-client-only"
UNASSIGNED_ABSENT = "unassigned-absent"
UNASSIGNED_ZERO = "unassigned-zero"
INDEPENDENT = "independent"
PAGE_SIZES = {"page-size-1": 1, "page-size-2": 2, "page-size-50": 50}
HISTORY_MAX_DAYS = 366
OFFSET_DEFAULT_LIMIT = 10

DIALECTS: dict[str, str] = {
    WRITE_BARE: "POST/PUT /booking, POST/PUT /client and PUT .../moduleLink/{m} "
    "answer the bare object, not an envelope",
    HISTORY_RANGE_REQUIRED: "GET /booking needs from and to, at most 366 days apart",
    "page-size-1": "cursor-paged lists serve 1 item a page",
    "page-size-2": "cursor-paged lists serve 2 items a page",
    "page-size-50": "cursor-paged lists serve 50 items a page",
    OFFSET_LIMIT_10: "offset lists default limit to 10 (maximum still 100)",
    CURSOR_ABSENT: "the last page of a cursor-paged list has no cursor key",
    CURSOR_EMPTY: 'the last page of a cursor-paged list answers "cursor": ""',
    LISTS_NULL: "empty lists of calendar, history, booking and client answers are null; "
    "GET /booking/{id} leaves an empty groupEvents out",
    UNKNOWN_FIELDS: "objects carry x-sim-extra and envelopes x-sim-envelope, "
    "fields a mirror does not know",
    BOOKING_LIST_CLIENT_ONLY: "GET /booking needs clientId (no listing of a store's bookings)",
    UNASSIGNED_ABSENT: "a booking no staff member has taken leaves staffId and the staff names out",
    UNASSIGNED_ZERO: 'a booking no staff member has taken answers "staffId": 0 and empty '
    "staff names",
}
BUNDLES: dict[str, tuple[str, ...]] = {
    INDEPENDENT: (
        WRITE_BARE,
        HISTORY_RANGE_REQUIRED,
        "page-size-2",
        OFFSET_LIMIT_10,
        CURSOR_ABSENT,
        LISTS_NULL,
        UNKNOWN_FIELDS,
        UNASSIGNED_ABSENT,
    ),
}
EXCLUSIVE: tuple[frozenset[str], ...] = (
    frozenset(PAGE_SIZES),
    frozenset({CURSOR_ABSENT, CURSOR_EMPTY}),
    frozenset({UNASSIGNED_ABSENT, UNASSIGNED_ZERO}),
)


def available() -> dict[str, str]:
    """Every name (dialects, then bundles) with what it does."""
    bundles = {name: "bundle: " + ", ".join(members) for name, members in BUNDLES.items()}
    return {**DIALECTS, **bundles}


NAMES: tuple[str, ...] = tuple(available())


def expand(names: Iterable[str]) -> frozenset[str]:
    """The dialects ``names`` switch on, bundles expanded; ``ValueError`` when invalid."""
    names = list(names)
    unknown = [name for name in names if name not in NAMES]
    if unknown:
        raise ValueError(f"unknown dialect {', '.join(unknown)}; valid: {', '.join(NAMES)}")
    active = frozenset(d for name in names for d in BUNDLES.get(name, (name,)))
    for group in EXCLUSIVE:
        clash = sorted(active & group)
        if len(clash) > 1:
            raise ValueError(f"dialects {', '.join(clash)} exclude each other: choose one")
    return active


class ActiveDialects:
    """The dialects in force, read by handlers on every request; changed at run time."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: tuple[str, ...] = ()
        self._active: frozenset[str] = frozenset()
        self.replace(names)

    def replace(self, names: Iterable[str]) -> None:
        """Switch to exactly ``names`` (all or nothing: ``ValueError`` leaves them as they were)."""
        wanted = tuple(dict.fromkeys(names))
        self._active = expand(wanted)
        self.names = wanted

    def __contains__(self, dialect: str) -> bool:
        return dialect in self._active

    def page_size(self, default: int) -> int:
        """Items per page of a cursor-paged list."""
        for name, size in PAGE_SIZES.items():
            if name in self._active:
                return size
        return default

    def offset_limit(self, default: int) -> int:
        """``limit`` of an offset list when the caller gives none."""
        return OFFSET_DEFAULT_LIMIT if OFFSET_LIMIT_10 in self._active else default
