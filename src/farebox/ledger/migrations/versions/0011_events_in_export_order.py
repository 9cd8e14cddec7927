"""an account's events indexed in (timestamp, id) order, the order the drill-down and the export page in

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 14:50:00.000000

`ix_usage_events_account_ts` (account, timestamp) left ties on a timestamp to a sort, and PostgreSQL, whose
statistics lag behind a table that grows at its newest end, planned the keyset page of an export as a sort of
every event left in the range (about 0 rows expected past the histogram's last bound), paging a million events
at 17,000 rows/s. With `id` in the index, the index is the order, and a page reads only its own rows.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_usage_events_account_ts_id", "usage_events", ["account_id", "ts_us", "id"])
    op.drop_index("ix_usage_events_account_ts", table_name="usage_events")


def downgrade() -> None:
    op.create_index("ix_usage_events_account_ts", "usage_events", ["account_id", "ts_us"])
    op.drop_index("ix_usage_events_account_ts_id", table_name="usage_events")
