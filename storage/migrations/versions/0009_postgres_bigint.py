"""64-bit integers on PostgreSQL

Revision ID: 0009
Revises: 0008

SQLite's INTEGER holds 64 bits; PostgreSQL's holds 32. The mirror takes ids up to 2**53
(``api.query.MAX_ID``) and gives calendar events it derives before a poll brings
Booxi's own a provisional id, negative, of 48 bits (``storage.rows``), which PostgreSQL
refused: every INTEGER column (and the sequences behind them) becomes BIGINT there, as
``storage.models`` declares. Nothing to do on SQLite.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _retype(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    columns: dict[str, list[str]] = {}
    for table, column in bind.execute(
        sa.text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = :old "
            "AND table_name != 'alembic_version' ORDER BY table_name, ordinal_position"
        ),
        {"old": old},
    ):
        columns.setdefault(table, []).append(column)
    for table, names in columns.items():
        changes = ", ".join(f'ALTER COLUMN "{name}" TYPE {new}' for name in names)
        op.execute(f'ALTER TABLE "{table}" {changes}')
    sequences = bind.execute(
        sa.text(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() "
            "AND data_type = CAST(:old AS regtype)"
        ),
        {"old": old},
    ).scalars()
    for sequence in list(sequences):
        op.execute(f'ALTER SEQUENCE "{sequence}" AS {new}')


def upgrade() -> None:
    _retype("integer", "bigint")


def downgrade() -> None:  # fails while a value needs more than 32 bits
    _retype("bigint", "integer")
