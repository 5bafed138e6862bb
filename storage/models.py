"""The tables: indexed columns that reads filter on, plus Booxi's JSON as it was sent.

Every mirrored row keeps ``raw`` (the object's JSON text exactly as Booxi sent it, key
order included, so it can be served back without re-encoding) and its provenance:
``source`` (``poll``, ``webhook``, ``write`` or ``fill``) and ``synced_at``. Booxi's own
instants (``starts_on``, ``modified_on``...) are stored as fixed-width UTC text
(``storage.times.instant_key``) so that string order is time order everywhere; our own
timestamps end in ``_at`` and are aware UTC datetimes. Client search columns hold
lower-cased copies of personal data and are listed in ``CLIENT_PII_COLUMNS``.
"""

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Column, Double, Index, Integer, String, Table, Text, text
from sqlmodel import Field, SQLModel

from storage.column_types import UtcDateTime, key_text

SOURCES = ("poll", "webhook", "write", "fill")


def _at(nullable: bool = False, index: bool = False) -> dt.datetime:
    return Field(sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


def _id() -> int:
    return Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))


def _key(default: Any = ..., *, primary_key: bool = False, index: bool = False) -> Any:
    """Text compared or ordered as a key: byte order (``storage.column_types.key_text``)."""
    return Field(default, primary_key=primary_key, index=index, sa_type=key_text())


class Merchant(SQLModel, table=True):
    __tablename__ = "merchant"

    id: int = _id()
    group_id: int | None = None
    time_zone: str = ""
    raw: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    synced_at: dt.datetime = _at()


class Staff(SQLModel, table=True):
    __tablename__ = "staff"

    id: int = _id()
    merchant_id: int | None = Field(default=None, index=True)
    status: str = ""
    raw: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    synced_at: dt.datetime = _at()


class ServiceCategory(SQLModel, table=True):
    __tablename__ = "service_category"

    id: int = _id()
    merchant_id: int | None = Field(default=None, index=True)
    raw: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    synced_at: dt.datetime = _at()


class Service(SQLModel, table=True):
    __tablename__ = "service"

    id: int = _id()
    merchant_id: int | None = Field(default=None, index=True)
    category_id: int | None = None
    booking_method: str = ""
    raw: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    synced_at: dt.datetime = _at()


class Client(SQLModel, table=True):
    __tablename__ = "client"
    __table_args__ = (
        Index("ix_client_merchant_email", "merchant_id", "email"),
        Index("ix_client_merchant_name", "merchant_id", "last_name", "first_name"),
    )

    id: int = _id()
    merchant_id: int | None = None
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone_home: str = ""
    phone_mobile: str = ""
    modified_on: str | None = _key(None)
    raw: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    synced_at: dt.datetime = _at()


CLIENT_PII_COLUMNS = ("first_name", "last_name", "email", "phone_home", "phone_mobile")


class ModuleLink(SQLModel, table=True):
    """A link from a Booxi object to an external system's id (``moduleId``/``externalId``)."""

    __tablename__ = "module_link"
    __table_args__ = (Index("ix_module_link_external", "module_id", "external_id"),)

    entity: str = _key(primary_key=True)  # client, staff, service, merchant
    entity_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    module_id: str = _key(primary_key=True)
    external_id: str = _key()
    modified_on: str | None = _key(None)
    raw: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    synced_at: dt.datetime = _at()


class ServiceStaff(SQLModel, table=True):
    """Who performs which service, as Booxi's Book Now lists said it (``GET /staff`` with
    ``serviceId``, ``GET /service`` with ``staffId``), per store (``merchant_id``: the
    store the list was asked for). ``listed_by`` says which list a row comes from
    (``service``: the staff list of ``service_id``; ``staff``: the service list of
    ``staff_id``): each list is replaced whole when asked again and answers from its own
    rows only, because Booxi's lists show online objects only and one list must not
    erase what the other said about an offline one."""

    __tablename__ = "service_staff"
    __table_args__ = (Index("ix_service_staff_staff", "listed_by", "merchant_id", "staff_id"),)

    listed_by: str = Field(primary_key=True)
    merchant_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    service_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    staff_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    synced_at: dt.datetime = _at()


# A store's dispatch queue (``storage.store_queue``): its appointment requests that need a
# manager. Literal SQL, in the partial index and in the queue's queries alike: a planner
# uses a partial index only for a query whose WHERE says the index's own terms.
QUEUE_METHOD = "Appointment"
QUEUE_PENDING = ("PendingStaffApproval", "PendingClientApproval")
QUEUED = (
    f"method = '{QUEUE_METHOD}' AND status <> 'Cancelled'"
    f" AND (staff_id IS NULL OR status IN ('{QUEUE_PENDING[0]}', '{QUEUE_PENDING[1]}'))"
)


class Booking(SQLModel, table=True):
    __tablename__ = "booking"
    __table_args__ = (
        Index("ix_booking_staff_starts", "staff_id", "starts_on"),
        Index("ix_booking_client_starts", "client_id", "starts_on"),
        Index("ix_booking_merchant_starts", "merchant_id", "starts_on"),
        Index("ix_booking_group_event", "group_event_id"),
        # the queues: a few rows a store, where a scan of the stores' bookings read them all
        Index(
            "ix_booking_queue",
            "merchant_id",
            "starts_on",
            sqlite_where=text(QUEUED),
            postgresql_where=text(QUEUED),
        ),
    )

    booking_id: str = Field(sa_column=Column(key_text(64), primary_key=True))
    merchant_id: int
    staff_id: int | None = None
    client_id: int | None = None
    method: str
    status: str
    starts_on: str = _key()
    ends_on: str = _key()
    modified_on: str = _key()
    group_event_id: int | None = None
    raw: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    synced_at: dt.datetime = _at()


class Coverage(SQLModel, table=True):
    """What the mirror has fetched from Booxi and may answer alone: per staff member the
    span of polled calendar windows (``kind = poll``, one row that grows) and calendar
    ranges fetched on first demand (``kind = fill``); per client, their whole history
    (``client:<id>``, ``fill``). ``covered_at`` says when."""

    __tablename__ = "coverage"

    scope: str = _key(primary_key=True)
    kind: str = _key(primary_key=True)
    starts_on: str = _key(primary_key=True)
    ends_on: str = _key()
    covered_at: dt.datetime = _at()


class PiiBlock(SQLModel, table=True):
    """Personal data the mirror must not keep: of a client (``kind = client``: erased,
    or past retention) or of one booking (``kind = booking``: booked without retention).
    Every path that stores bookings, clients or webhook events strips it."""

    __tablename__ = "pii_block"

    kind: str = Field(primary_key=True)
    ident: str = Field(primary_key=True)
    reason: str  # erasure, retention, no_retention
    created_at: dt.datetime = _at()


class CalendarEvent(SQLModel, table=True):
    """One calendar entry. ``provisional`` rows were derived from a booking seen in a
    webhook or write before a poll brought Booxi's own event (and its id)."""

    __tablename__ = "calendar_event"
    __table_args__ = (Index("ix_calendar_event_staff_starts", "staff_id", "starts_on"),)

    id: int = _id()  # Booxi's, or provisional: negative, 48 bits (storage.rows)
    merchant_id: int | None = None
    staff_id: int
    starts_on: str = _key()
    ends_on: str = _key()
    type: str
    booking_id: str | None = _key(None, index=True)
    group_event_id: int | None = None
    time_slot_id: int | None = None
    provisional: bool = False
    raw: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    synced_at: dt.datetime = _at()


class GroupEvent(SQLModel, table=True):
    __tablename__ = "group_event"

    id: int = _id()
    merchant_id: int | None = None
    staff_id: int | None = Field(default=None, index=True)
    starts_on: str = _key()
    raw: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    synced_at: dt.datetime = _at()


class TimeSlot(SQLModel, table=True):
    __tablename__ = "time_slot"
    __table_args__ = (Index("ix_time_slot_staff_starts", "staff_id", "starts_on"),)

    id: int = _id()
    merchant_id: int | None = None
    staff_id: int
    starts_on: str = _key()
    ends_on: str = _key()
    type: str = ""
    raw: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    synced_at: dt.datetime = _at()


class SyncState(SQLModel, table=True):
    """Freshness of one unit of sync work: a staff calendar (``staff:<id>``) or the
    reference data (``reference``)."""

    __tablename__ = "sync_state"

    scope: str = _key(primary_key=True)
    kind: str
    merchant_id: int | None = None
    staff_id: int | None = None
    last_attempt_at: dt.datetime | None = _at(nullable=True)
    last_success_at: dt.datetime | None = _at(nullable=True)
    window_start: dt.datetime | None = _at(nullable=True)
    window_end: dt.datetime | None = _at(nullable=True)
    last_error: str | None = None
    consecutive_failures: int = 0
    updated_at: dt.datetime = _at()


class InboxEvent(SQLModel, table=True):
    """A webhook call as received, kept with how it was verified and what it did."""

    __tablename__ = "inbox_event"

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    event_type: str
    received_at: dt.datetime = _at(index=True)
    created_on: str | None = None
    booking_id: str | None = Field(default=None, index=True)
    client_id: int | None = Field(default=None, index=True)
    verified: str
    outcome: str  # applied, stale, ignored, failed
    detail: str = ""
    duplicates: int = 0
    body: str = Field(sa_column=Column(Text, nullable=False))


class IdempotencyResult(SQLModel, table=True):
    """The first answer to a write sent with an ``Idempotency-Key``, kept 24 hours.

    One row per (API key name, idempotency key). ``status`` is None while the request is
    with Booxi (a repeat then gets 409). ``body`` is Booxi's answer as sent, which can hold
    a client's personal data: it is purged with the row."""

    __tablename__ = "idempotency_result"

    principal: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    method: str
    path: str = Field(sa_column=Column(Text, nullable=False))
    body_sha256: str
    status: int | None = None
    content_type: str | None = None
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: dt.datetime = _at(index=True)


class MirrorSecret(SQLModel, table=True):
    """Secrets of this database, made once at random (``storage.mirror_secret``): the
    key that signs the mirror's own cursors. Never served, never logged."""

    __tablename__ = "mirror_secret"

    name: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))  # hex


class ChangeLog(SQLModel, table=True):
    """What changed, written by triggers (``storage.changes``, migration 0007) and read
    by the read API's ready answers (``api.ready``). ``seq`` is never reused."""

    __tablename__ = "change_log"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: int | None = Field(default=None, primary_key=True)
    tag: str = Field(sa_column=Column(Text, nullable=False))
    lo: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    hi: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class BudgetEntry(SQLModel, table=True):
    """The rate budget shared by every process on this database (``storage.budget_ledger``,
    migration 0011): one row per request sent to Booxi (``kind`` ``request``, weight 1),
    per extra weight (``charge``: a 400 answer counts double) and per pause after a 429
    (``pause``, ``at_s`` the instant the pause ends).

    ``at_s`` is seconds since the epoch, a float, not a ``_at`` datetime: the windows are
    counted in SQL to the millisecond on both engines, by PostgreSQL's own clock there.
    Rows older than a minute are pruned as new ones come."""

    __tablename__ = "budget_entry"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    at_s: float = Field(sa_column=Column(Double, nullable=False, index=True))
    weight: int = 1


TABLES = SQLModel.metadata


class AuditRun(SQLModel, table=True):
    """What the latest drift audits found (``booxi-mirror audit``, ``storage.audits``,
    migration 0012), for the dashboard: counts only, never an object's data. ``staff`` is
    the JSON list of the staff ids audited; ``found`` and ``remaining`` map each staff id to
    ``{kind: count}`` of its differences (``remaining``: after ``--repair``, else null)."""

    __tablename__ = "audit_run"

    id: int | None = Field(default=None, primary_key=True)
    finished_at: dt.datetime = _at(index=True)
    window_start: dt.datetime = _at()
    window_end: dt.datetime = _at()
    staff: str = Field(sa_column=Column(Text, nullable=False))
    found: str = Field(sa_column=Column(Text, nullable=False))
    remaining: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


def table_of(model: type[SQLModel]) -> Table:
    """A model's Core table, which the storage functions build their statements from
    (SQLModel sets ``__table__`` on table models only, so its type does not show it)."""
    return TABLES.tables[str(model.__tablename__)]


def _integers_of_64_bits() -> None:
    """Every INTEGER column holds 64 bits, as SQLite's INTEGER does: BIGINT on PostgreSQL
    (migration 0009), whose INTEGER holds 32. The mirror takes ids up to 2**53
    (``api.query.MAX_ID``) and makes 48-bit provisional event ids. Set here for every
    table at once: SQLModel maps each ``int`` field to INTEGER, and a BIGINT on SQLite
    would not be the rowid."""
    for table in TABLES.tables.values():
        for column in table.columns:
            if type(column.type) is Integer:
                column.type = Integer().with_variant(BigInteger(), "postgresql")


_integers_of_64_bits()
