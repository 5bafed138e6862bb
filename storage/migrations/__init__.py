"""Alembic migrations of the mirror's schema; applied by ``storage.migrate.upgrade``."""
