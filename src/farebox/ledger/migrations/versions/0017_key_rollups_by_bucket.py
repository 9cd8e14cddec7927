"""key rollups by bucket: every account's quarter hours of `usage_key_rollups` in one index range

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 21:40:00.000000

Today's totals across every account (the live view for the master key) read a day of key rollups for all accounts;
the primary key leads with the account, so without this index that read scanned the whole table. The downgrade
drops the index.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_usage_key_rollups_bucket", "usage_key_rollups", ["bucket"])


def downgrade() -> None:
    op.drop_index("ix_usage_key_rollups_bucket", table_name="usage_key_rollups")
