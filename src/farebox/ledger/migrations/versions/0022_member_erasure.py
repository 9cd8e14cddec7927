"""member erasure: when a member's identity was pseudonymised (its usage and amounts kept)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 03:00:00.000000

NULL for every member made before it: none was erased.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("members", sa.Column("erased_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("members", "erased_at")
