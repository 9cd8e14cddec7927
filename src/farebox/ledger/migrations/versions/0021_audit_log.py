"""audit log: every read of analytics, exports and admin data and every admin change, with who, what and whence

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 02:30:00.000000

An empty table: nothing before it was audited. The downgrade drops it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("principal_kind", sa.String(16), nullable=True),
        sa.Column("principal_account_id", sa.String(36), nullable=True),
        sa.Column("principal_member_id", sa.String(36), nullable=True),
        sa.Column("principal_key_id", sa.String(36), nullable=True),
        sa.Column("principal_role", sa.String(16), nullable=True),
        sa.Column("account_id", sa.String(36), nullable=True),
        sa.Column("key_id", sa.String(36), nullable=True),
        sa.Column("member_id", sa.String(36), nullable=True),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("client_address", sa.Text(), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at_us"])
    op.create_index("ix_audit_log_account_at", "audit_log", ["account_id", "at_us"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_account_at", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
