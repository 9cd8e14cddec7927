"""prepaid credits: credit_top_ups (each top-up, appended) and credit_balances (what each account holds)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 13:00:00.000000

Accounts without a top-up hold no credits and are not limited by them, so nothing is filled in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credit_top_ups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("amount_nano", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_member_id", sa.String(length=36), nullable=True),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("credit_top_ups", schema=None) as batch_op:
        batch_op.create_index("ix_credit_top_ups_account_created", ["account_id", "created_at_us"], unique=False)
    op.create_table(
        "credit_balances",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("granted_nano", sa.BigInteger(), nullable=False),
        sa.Column("opening_nano", sa.BigInteger(), nullable=False),
        sa.Column("opened_at_us", sa.BigInteger(), nullable=False),
        sa.Column("topped_up_at_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("credit_balances")
    with op.batch_alter_table("credit_top_ups", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_top_ups_account_created")
    op.drop_table("credit_top_ups")
