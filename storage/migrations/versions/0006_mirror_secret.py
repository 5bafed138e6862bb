"""a per-database secret that signs the mirror's cursors

Revision ID: 0006
Revises: 0005
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "mirror_secret",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # made here, at random, once per database (storage.mirror_secret makes it again at
    # start should the row ever be missing)
    op.bulk_insert(table, [{"name": "cursor", "value": secrets.token_bytes(32).hex()}])


def downgrade() -> None:
    op.drop_table("mirror_secret")
