"""sign-in failures: the dashboard's failed sign-ins, counted in the ledger by every process alike

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 11:00:00.000000

An empty table (`farebox.ledger.sign_in_failures`); the failures counted in each process's memory before are not
carried over (they last a window). The downgrade drops it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("throttle", sa.String(16), nullable=False),
        sa.Column("name_mac", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_in_failures_name", "sign_in_failures", ["throttle", "name_mac", "at_us"])
    op.create_index("ix_sign_in_failures_at", "sign_in_failures", ["at_us"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_failures_at", table_name="sign_in_failures")
    op.drop_index("ix_sign_in_failures_name", table_name="sign_in_failures")
    op.drop_table("sign_in_failures")
