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
- ``storage.dialect``: what the writer's SQL needs per engine (upserts);
  ``storage.read_connection``: what the read functions' SQL needs (placeholders,
  timestamp parameters); ``storage.column_types``: what the tables need.
- ``storage.budget_ledger``: the rate budget shared by every process on the database
  (``claim_slot``, ``record_charge``, ``record_pause``), with its own locking and clock
  per engine.
- ``storage.resync``: a staff member's calendar window as held: read for an audit,
  rewritten where it drifted, dropped before a rebuild (``drop_staff_window``).
- ``storage.reader.Reader``: runs the read functions (``storage.reads``,
  ``storage.coverage``, ``storage.book_now``), each in one read-only snapshot, on
  SQLite or PostgreSQL; they take a ``storage.read_connection.ReadConnection``.
- ``storage.changes``: the change log the triggers write (tags, SQLite's and
  PostgreSQL's triggers from one table), read by the read API's ready answers: on
  SQLite by ``seq`` (``Probe``), on PostgreSQL by transaction (``ChangeFeed``:
  ``LISTEN``/``NOTIFY``).
- ``storage.inspection``: read-only queries of the inspection commands, on the same
  ``ReadConnection`` (``connect_readonly`` for an SQLite file,
  ``storage.reader.blocking_reads`` for PostgreSQL); ``storage.replay``: which rows of a
  replayed webhook event would change the mirror.
- ``storage.audits``: the latest drift audits' counts (``record_audit`` by the writer,
  ``find_last_audit`` by the reader, for the dashboard).
"""
