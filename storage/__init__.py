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
- ``storage.dialect``: the only place that tells SQLite and PostgreSQL apart.
"""
