"""workloads: agents and plain VMs as named things, by the id usage events carry in agent_id

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 13:50:00.000000

Nothing is filled in: an id seen in usage but not registered is shown as an agent named by its id.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workloads",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id", "id", name="pk_workloads"),
    )


def downgrade() -> None:
    op.drop_table("workloads")
