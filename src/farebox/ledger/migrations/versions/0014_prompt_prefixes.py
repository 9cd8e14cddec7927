"""prompt prefixes: a keyed hash of a long prompt's beginning on each event, and how often each repeats

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 19:00:00.000000

`usage_events` gains `prompt_prefix` (NULL for the events already recorded: their prompts were never kept, so
there is nothing to hash), and `prompt_prefixes` counts the successful requests that carry one per account,
local day, key, provider, canonical model and prefix. The downgrade drops both.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("usage_events", sa.Column("prompt_prefix", sa.String(16), nullable=True))
    op.create_table(
        "prompt_prefixes",
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("canonical_model", sa.Text(), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "day", "key_id", "provider", "canonical_model", "prefix", name="pk_prompt_prefixes"
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("prompt_prefixes")
    # Both databases drop a column in place (SQLite since 3.35): no copy of the events table.
    op.execute("ALTER TABLE usage_events DROP COLUMN prompt_prefix")
