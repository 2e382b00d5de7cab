"""deliveries: a partial index of the rows that still hold their raw body, so a prune starts
where bodies remain instead of rereading every delivery it already pruned

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Pruned deliveries stay as rows (without their body), so walking the primary key from the
# start made each periodic prune read all of history again. A pruned row leaves this index;
# a new one is appended at its right edge (ids grow), about one page per commit.
_HAS_BODY = "body IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_unpruned",
        "deliveries",
        ["id"],
        unique=False,
        postgresql_where=sa.text(_HAS_BODY),
        sqlite_where=sa.text(_HAS_BODY),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_unpruned", table_name="deliveries")
