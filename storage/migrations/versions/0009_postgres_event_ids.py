"""64-bit calendar event ids on PostgreSQL

Revision ID: 0009
Revises: 0008

A calendar event the mirror derives before a poll brings Booxi's own carries a
provisional id: negative, 48 bits (``storage.rows.derived_calendar_events``). SQLite's
INTEGER holds 64 bits; PostgreSQL's holds 32 and refused them: ``calendar_event.id``
becomes BIGINT there. Nothing to do on SQLite.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE "calendar_event" ALTER COLUMN "id" TYPE BIGINT')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # fails while a provisional id is held
        op.execute('ALTER TABLE "calendar_event" ALTER COLUMN "id" TYPE INTEGER')
