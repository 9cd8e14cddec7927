"""account tax rate: the rate an account's billing export taxes its lines at, in parts per million

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 02:00:00.000000

Every account starts at 0 (no tax), so no billing export changes until a rate is set.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("tax_rate_ppm", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("accounts", "tax_rate_ppm")
