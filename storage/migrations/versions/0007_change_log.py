"""a log of what changed, for the read API's ready answers

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.changes import drop_trigger_statements, trigger_statements

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "change_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("lo", sa.Text(), nullable=True),
        sa.Column("hi", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        # The read API serves from SQLite only for now; PostgreSQL gets its triggers
        # (and NOTIFY) with the replicas work.
        return
    inspector = sa.inspect(bind)
    from storage.changes import TAGS

    columns = {t: [c["name"] for c in inspector.get_columns(t)] for t in TAGS}
    for statement in trigger_statements(columns):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in drop_trigger_statements():
            op.execute(statement)
    op.drop_table("change_log")
