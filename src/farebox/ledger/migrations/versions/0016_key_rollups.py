"""key rollups: the quarter-hour rollups summed per account, bucket, key and status

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 21:00:00.000000

`usage_key_rollups` lets the reads that need no other dimension than the key and the status (the trends' timeline,
the patterns' hourly profile, today's totals across every account) sum about one row per key and quarter hour
instead of every quarter-hour rollup. It is filled from `usage_rollups` (voids are already netted there) in one
INSERT ... SELECT. The downgrade drops it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MEASURES = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "characters",
    "seconds_micro",
    "quantity_micro",
    "cost_nano",
    "unpriced_requests",
    "estimated_requests",
    "latency_ms_sum",
)


def upgrade() -> None:
    op.create_table(
        "usage_key_rollups",
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _MEASURES),
        sa.PrimaryKeyConstraint("account_id", "bucket", "key_id", "status", name="pk_usage_key_rollups"),
        sqlite_with_rowid=False,
    )
    sums = ", ".join(f"SUM({name})" for name in _MEASURES)
    op.execute(
        f"INSERT INTO usage_key_rollups (account_id, bucket, key_id, status, {', '.join(_MEASURES)}) "
        f"SELECT account_id, bucket, key_id, status, {sums} FROM usage_rollups "
        "GROUP BY account_id, bucket, key_id, status"
    )


def downgrade() -> None:
    op.drop_table("usage_key_rollups")
