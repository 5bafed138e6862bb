"""key text ordered by bytes on PostgreSQL (COLLATE "C")

Revision ID: 0008
Revises: 0007

Every text column the mirror compares or orders as a key (Booxi's instants, booking ids,
coverage scopes and bounds, module link ids, sync scopes: see
``storage.column_types.key_text``) gets ``COLLATE "C"`` on PostgreSQL, so that its order
is SQLite's byte order whatever the database's default collation (under en_US.UTF-8,
``"~"``, coverage's upper bound, sorts before the digits). Equality is unchanged (every
collation here is deterministic); the indexes on these columns are rebuilt. Nothing to
do on SQLite, which compares text by bytes.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: {column: its type}, as storage.models declares them
KEYS = {
    "booking": {
        "booking_id": "VARCHAR(64)",
        "starts_on": "VARCHAR",
        "ends_on": "VARCHAR",
        "modified_on": "VARCHAR",
    },
    "calendar_event": {"starts_on": "VARCHAR", "ends_on": "VARCHAR", "booking_id": "VARCHAR"},
    "time_slot": {"starts_on": "VARCHAR", "ends_on": "VARCHAR"},
    "group_event": {"starts_on": "VARCHAR"},
    "client": {"modified_on": "VARCHAR"},
    "module_link": {
        "entity": "VARCHAR",
        "module_id": "VARCHAR",
        "external_id": "VARCHAR",
        "modified_on": "VARCHAR",
    },
    "coverage": {
        "scope": "VARCHAR",
        "kind": "VARCHAR",
        "starts_on": "VARCHAR",
        "ends_on": "VARCHAR",
    },
    "sync_state": {"scope": "VARCHAR"},
}


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in KEYS.items():
        changes = ", ".join(
            f'ALTER COLUMN "{column}" TYPE {kind} COLLATE "{collation}"'
            for column, kind in columns.items()
        )
        op.execute(f'ALTER TABLE "{table}" {changes}')


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
