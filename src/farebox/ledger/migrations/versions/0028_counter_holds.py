"""counter holds: where reservations are held while the shared counters' Redis cannot be reached

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 10:00:00.000000

Three empty tables (`farebox.ledger.counter_holds`): the mode row (made by the first process that asks), the
processes sharing the counters, and the holds made in the database. The downgrade drops them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTER = ("scope", "scope_id", "period", "period_start")


def upgrade() -> None:
    op.create_table(
        "counters_mode",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "counters_processes",
        sa.Column("process", sa.String(128), nullable=False),
        sa.Column("alive_until_us", sa.BigInteger(), nullable=False),
        sa.Column("acked", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("process"),
    )
    op.create_table(
        "counter_holds",
        sa.Column("hold_id", sa.String(36), nullable=False),
        sa.Column("process", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(36), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("amount_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hold_id", *_COUNTER, name="pk_counter_holds"),
    )
    op.create_index("ix_counter_holds_counter", "counter_holds", list(_COUNTER))


def downgrade() -> None:
    op.drop_index("ix_counter_holds_counter", table_name="counter_holds")
    op.drop_table("counter_holds")
    op.drop_table("counters_processes")
    op.drop_table("counters_mode")
