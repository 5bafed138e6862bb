"""Secrets of one database (table ``mirror_secret``): made at random once, kept with the
data they protect, so they outlive restarts and never leave the database.

``cursor``: the HMAC key that signs the mirror's own paging cursors (``api.query``). It
is made by migration 0006 and, should the row be missing, at start (``cursor_key``, run
by the writer). A new database (or a deleted row) means a new key: cursors handed out
before are then refused (400), as a foreign cursor is.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.engine import Connection

from storage.dialect import insert_ignoring_conflicts
from storage.models import MirrorSecret, table_of

SECRET = table_of(MirrorSecret)
CURSOR = "cursor"
KEY_BYTES = 32


def cursor_key(conn: Connection) -> bytes:
    """This database's cursor key, made (at random) if it has none yet."""
    return _secret(conn, CURSOR)


def _secret(conn: Connection, name: str) -> bytes:
    def held() -> bytes | None:
        value = conn.execute(select(SECRET.c.value).where(SECRET.c.name == name)).scalar()
        try:
            key = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            key = b""
        return key if len(key) >= KEY_BYTES else None

    found = held()
    if found is not None:
        return found
    fresh = secrets.token_bytes(KEY_BYTES).hex()
    # an unreadable row (hand-edited) is replaced; a concurrent start's row is kept
    conn.execute(SECRET.delete().where(SECRET.c.name == name))
    insert_ignoring_conflicts(conn, SECRET, [{"name": name, "value": fresh}])
    made = held()
    if made is None:  # pragma: no cover - just written
        raise RuntimeError(f"could not keep the {name} secret")
    return made
