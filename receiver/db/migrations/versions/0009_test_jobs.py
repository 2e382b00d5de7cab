"""jobs.test: a job only framehook test events (``"framehookTest": true``, sent by
``framehook send-test``) have moved; it charges no credits and names no files to capture

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every job recorded before this revision came from a body nobody marked: a real one.
    # A plain ADD COLUMN (SQLite allows one with a constant default): no copy of the table,
    # which would take as long as the history is big and leave its old pages free.
    op.add_column(
        "jobs", sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("test")
