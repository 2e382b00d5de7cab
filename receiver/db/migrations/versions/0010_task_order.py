"""tasks: waits_for (the handlers a task runs after, for its delivery) and an index over
waiting tasks by delivery

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN and CREATE INDEX, not batch mode: batch mode copies the whole table on
    # SQLite, which takes as long as the history is big. NULL for every existing task: none
    # of them waits for anything.
    op.add_column("tasks", sa.Column("waits_for", sa.String(length=1000), nullable=True))
    # Releasing waiting tasks when a task of their delivery ends looks them up by delivery;
    # partial, so the index holds only the tasks waiting now (usually none).
    op.create_index(
        "ix_tasks_waiting",
        "tasks",
        ["delivery_id"],
        unique=False,
        postgresql_where=sa.text("status = 'waiting'"),
        sqlite_where=sa.text("status = 'waiting'"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_waiting", table_name="tasks")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("waits_for")
