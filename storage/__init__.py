"""The mirror's database: tables, engine, migrations, the writer and shared queries.

Knows nothing of HTTP or of Booxi's API, only of Booxi's JSON objects. Public names:

- ``storage.models``: the SQLModel tables (``Booking``, ``CalendarEvent``, ``SyncState``,
  ``InboxEvent``...); ``storage.rows``: Booxi JSON to column values.
- ``storage.engine.make_engine(url)``; ``storage.migrate.upgrade(engine)``.
- ``storage.writer.Writer``: the single writer (group commit, one transaction per hand-off).
- ``storage.bookings``, ``storage.reference``, ``storage.sync_state``, ``storage.inbox``,
  ``storage.idempotency`` (results of writes sent with an ``Idempotency-Key``):
  synchronous functions of a ``Connection``, run by the writer (``upsert_*``,
  ``record_*``, ``find_*``, ``list_*``).
- ``storage.dialect``: the place that tells SQLite and PostgreSQL apart for upserts;
  ``storage.budget_ledger`` (the rate budget shared by every process on the database:
  ``claim_slot``, ``record_charge``, ``record_pause``) has its own locking and clock
  per engine.
- ``storage.resync``: a staff member's calendar window as held: read for an audit,
  rewritten where it drifted, dropped before a rebuild (``drop_staff_window``).
- ``storage.inspection``: read-only queries of the inspection commands, on a plain
  ``sqlite3`` connection (``connect_readonly``); ``storage.replay``: which rows of a
  replayed webhook event would change the mirror.
"""
