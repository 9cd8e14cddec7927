"""usage adjustments: voids of recorded usage events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:12:40.118203
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_adjustments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=True),
        sa.Column("member_id", sa.String(length=36), nullable=True),
        sa.Column("event_ts_us", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.Column("characters", sa.BigInteger(), nullable=False),
        sa.Column("seconds_micro", sa.BigInteger(), nullable=False),
        sa.Column("quantity_micro", sa.BigInteger(), nullable=False),
        sa.Column("cost_nano", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_member_id", sa.String(length=36), nullable=True),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["usage_events.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("usage_adjustments", schema=None) as batch_op:
        batch_op.create_index("ix_usage_adjustments_account_event_ts", ["account_id", "event_ts_us"], unique=False)
        batch_op.create_index("uq_usage_adjustments_event_kind", ["event_id", "kind"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("usage_adjustments", schema=None) as batch_op:
        batch_op.drop_index("uq_usage_adjustments_event_kind")
        batch_op.drop_index("ix_usage_adjustments_account_event_ts")

    op.drop_table("usage_adjustments")
