"""the change log on PostgreSQL: each row's transaction and time, triggers and NOTIFY

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.changes import TAGS, drop_postgres_trigger_statements, postgres_trigger_statements

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite has its triggers since 0007, and needs neither column
    # No trigger wrote to the table before this revision: it is empty. The transaction
    # id is xid8's value as a bigint (a type the models' reflection knows).
    op.execute(
        "ALTER TABLE change_log"
        " ADD COLUMN tx bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,"
        " ADD COLUMN at timestamptz NOT NULL DEFAULT now()"
    )
    op.create_index("ix_change_log_tx", "change_log", ["tx"])
    op.create_index("ix_change_log_at", "change_log", ["at"])
    inspector = sa.inspect(bind)
    columns = {t: [c["name"] for c in inspector.get_columns(t)] for t in TAGS}
    for statement in postgres_trigger_statements(columns):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for statement in drop_postgres_trigger_statements():
        op.execute(statement)
    op.drop_index("ix_change_log_at", table_name="change_log")
    op.drop_index("ix_change_log_tx", table_name="change_log")
    op.drop_column("change_log", "at")
    op.drop_column("change_log", "tx")
