"""deliveries: drop the dedupe_key index (the ledger's primary key is the dedupe), and keep
only the rare rows in the outcome and lora_id indexes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 22:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every index row is a page written to the WAL on each webhook. Nothing reads deliveries by
# dedupe_key (the ledger's unique key answers "seen before?"); the admin list filters by an
# outcome that is not "accepted" (duplicates, conflicts...) and walks the primary key for
# "accepted", which nearly every row is; no query looks deliveries up by lora_id, and only
# LoRA events have one. Plain DROP/CREATE INDEX, not batch mode (which copies the table).
_RARE_OUTCOME = "outcome <> 'accepted'"
_HAS_LORA = "lora_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_deliveries_dedupe_key", table_name="deliveries")
    op.drop_index("ix_deliveries_outcome", table_name="deliveries")
    op.create_index(
        "ix_deliveries_outcome",
        "deliveries",
        ["outcome"],
        unique=False,
        postgresql_where=sa.text(_RARE_OUTCOME),
        sqlite_where=sa.text(_RARE_OUTCOME),
    )
    op.drop_index("ix_deliveries_lora_id", table_name="deliveries")
    op.create_index(
        "ix_deliveries_lora_id",
        "deliveries",
        ["lora_id"],
        unique=False,
        postgresql_where=sa.text(_HAS_LORA),
        sqlite_where=sa.text(_HAS_LORA),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_lora_id", table_name="deliveries")
    op.create_index("ix_deliveries_lora_id", "deliveries", ["lora_id"], unique=False)
    op.drop_index("ix_deliveries_outcome", table_name="deliveries")
    op.create_index("ix_deliveries_outcome", "deliveries", ["outcome"], unique=False)
    op.create_index("ix_deliveries_dedupe_key", "deliveries", ["dedupe_key"], unique=False)
