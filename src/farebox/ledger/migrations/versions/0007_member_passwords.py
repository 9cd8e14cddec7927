"""member passwords: an argon2id hash and when it last changed, on members

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 12:40:00.000000

Both columns are nullable: a member has no password until one is set. The downgrade drops them with
`ALTER TABLE ... DROP COLUMN` (SQLite 3.35 or later) rather than a batch copy of `members`, which SQLite
could not drop while keys and tokens refer to it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("members", sa.Column("password_hash", sa.Text(), nullable=True))
    op.add_column("members", sa.Column("password_changed_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("members", "password_changed_at")
    op.drop_column("members", "password_hash")
