"""scheduled reports: an account's reports run daily, weekly or monthly, each slot once

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 06:00:00.000000

An empty table: nothing was scheduled before it. The downgrade drops it, and with it every schedule.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_reports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("at_time", sa.String(5), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
        sa.Column("last_slot_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id", name="pk_scheduled_reports"),
    )
    op.create_index("uq_scheduled_reports_account_name", "scheduled_reports", ["account_id", "name"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_scheduled_reports_account_name", table_name="scheduled_reports")
    op.drop_table("scheduled_reports")
