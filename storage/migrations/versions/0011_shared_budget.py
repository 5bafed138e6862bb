"""the rate budget shared by every replica and CLI command on one database

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# 64-bit on PostgreSQL, as every integer column there since 0009 (``storage.models``)
INTEGER = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "budget_entry",
        sa.Column("id", INTEGER, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at_s", sa.Double(), nullable=False),
        sa.Column("weight", INTEGER, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_budget_entry_at_s"), "budget_entry", ["at_s"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_budget_entry_at_s"), table_name="budget_entry")
    op.drop_table("budget_entry")
