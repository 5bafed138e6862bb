"""Which rows of a replayed webhook event would change the mirror (``inbox replay``).

A replay must change nothing the second time, so it writes a client or module link only
when the mirror does not hold it, holds an older ``modifiedOn``, or (when either side has
no ``modifiedOn``) holds different JSON. Functions of a SQLAlchemy ``Connection``, run
by the writer.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from storage.models import Client, ModuleLink, table_of
from storage.rows import Json

CLIENT = table_of(Client)
LINK = table_of(ModuleLink)


def _changes(row: Json, held: tuple[str | None, str] | None) -> bool:
    if held is None:
        return True
    modified_on, raw = held
    if modified_on is None or row["modified_on"] is None:
        return bool(raw != row["raw"])
    return bool(row["modified_on"] > modified_on)


def fresher_clients(conn: Connection, rows: Sequence[Json]) -> list[Json]:
    """Of client rows, the newest per client, kept when it would change the stored one."""
    newest: dict[int, Json] = {}
    for row in rows:
        kept = newest.get(row["id"])
        if kept is None or (row["modified_on"] or "") >= (kept["modified_on"] or ""):
            newest[row["id"]] = row
    held: dict[int, tuple[str | None, str]] = {}
    ids = list(newest)
    for start in range(0, len(ids), 500):
        result = conn.execute(
            select(CLIENT.c.id, CLIENT.c.modified_on, CLIENT.c.raw).where(
                CLIENT.c.id.in_(ids[start : start + 500])
            )
        )
        held.update({r.id: (r.modified_on, r.raw) for r in result})
    return [row for row in newest.values() if _changes(row, held.get(row["id"]))]


def fresher_links(conn: Connection, rows: Sequence[Json]) -> list[Json]:
    """Of module link rows, the last per link, kept when it would change the stored one."""
    unique = {(r["entity"], r["entity_id"], r["module_id"]): r for r in rows}
    fresher = []
    for (entity, entity_id, module_id), row in unique.items():
        found = conn.execute(
            select(LINK.c.modified_on, LINK.c.raw).where(
                LINK.c.entity == entity,
                LINK.c.entity_id == entity_id,
                LINK.c.module_id == module_id,
            )
        ).first()
        if _changes(row, None if found is None else (found.modified_on, found.raw)):
            fresher.append(row)
    return fresher


def client_held(conn: Connection, client_id: int) -> bool:
    """Whether the mirror holds the client or any of its module links."""
    for query in (
        select(CLIENT.c.id).where(CLIENT.c.id == client_id),
        select(LINK.c.entity_id).where(LINK.c.entity == "client", LINK.c.entity_id == client_id),
    ):
        if conn.execute(query.limit(1)).first() is not None:
            return True
    return False
