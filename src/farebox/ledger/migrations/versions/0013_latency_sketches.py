"""latency sketches: mergeable latency and time-to-first-token summaries per quarter hour and per local day

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 10:00:00.000000

Percentiles over any range are read from these sketches, never from the raw events. Nothing is filled in: the
sketches hold the requests recorded from this version on (only proxied requests carry a latency). Downgrading
drops them.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GROUP = ("key_id", "provider", "model", "writer")


def _columns() -> list[sa.Column[Any]]:
    return [
        *(sa.Column(name, sa.Text(), nullable=False) for name in _GROUP[:-1]),
        sa.Column("writer", sa.String(length=32), nullable=False),
        sa.Column("latency", sa.LargeBinary(), nullable=True),
        sa.Column("ttft", sa.LargeBinary(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "latency_sketches",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("bucket", "account_id", *_GROUP, name="pk_latency_sketches"),
    )
    with op.batch_alter_table("latency_sketches", schema=None) as batch_op:
        batch_op.create_index("ix_latency_sketches_account_bucket", ["account_id", "bucket"], unique=False)
    op.create_table(
        "latency_sketches_daily",
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("account_id", "day", *_GROUP, name="pk_latency_sketches_daily"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("latency_sketches_daily")
    with op.batch_alter_table("latency_sketches", schema=None) as batch_op:
        batch_op.drop_index("ix_latency_sketches_account_bucket")
    op.drop_table("latency_sketches")
