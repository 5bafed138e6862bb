"""who performs which service (Book Now lists)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "service_staff",
        sa.Column("listed_by", sa.String(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("service_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("staff_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("listed_by", "merchant_id", "service_id", "staff_id"),
    )
    with op.batch_alter_table("service_staff", schema=None) as batch_op:
        batch_op.create_index(
            "ix_service_staff_staff", ["listed_by", "merchant_id", "staff_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("service_staff", schema=None) as batch_op:
        batch_op.drop_index("ix_service_staff_staff")
    op.drop_table("service_staff")
