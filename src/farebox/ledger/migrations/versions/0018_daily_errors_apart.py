"""daily errors apart: the daily cube drops the error class, `usage_daily_errors` keeps failures by class

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 22:00:00.000000

A day's failures of one key and model spread over several error classes, and in the cube (since `0013`) they made
most of its rows: every daily read grouped them again. The cube is summed once more without the class, in SQL from
its own rows; its failed rows, by class, move to `usage_daily_errors`. The downgrade puts them back: the cube's
successful rows with the class '', and the daily errors as they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIMENSIONS = (
    "key_id",
    "member_id",
    "agent_id",
    "app",
    "axis",
    "provider",
    "model",
    "canonical_model",
    "operation",
    "status",
)
_MEASURES = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "characters",
    "seconds_micro",
    "quantity_micro",
    "cost_nano",
    "unpriced_requests",
    "estimated_requests",
    "latency_ms_sum",
)


def _create(name: str, dimensions: Sequence[str]) -> None:
    op.create_table(
        name,
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        *(sa.Column(dimension, sa.Text(), nullable=False) for dimension in dimensions),
        *(sa.Column(measure, sa.BigInteger(), nullable=False) for measure in _MEASURES),
        sa.PrimaryKeyConstraint("account_id", "day", *dimensions, name=f"pk_{name}"),
        sqlite_with_rowid=False,
    )


def _set_aside() -> None:
    """Rename `usage_daily` to `usage_daily_old`, its primary key too (PostgreSQL names it in the schema)."""
    op.rename_table("usage_daily", "usage_daily_old")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE usage_daily_old RENAME CONSTRAINT pk_usage_daily TO pk_usage_daily_old")


def upgrade() -> None:
    _set_aside()
    _create("usage_daily", _DIMENSIONS)
    _create("usage_daily_errors", (*_DIMENSIONS, "error_class"))
    keys = ", ".join(("account_id", "day", *_DIMENSIONS))
    measures = ", ".join(_MEASURES)
    sums = ", ".join(f"SUM({name})" for name in _MEASURES)
    op.execute(
        f"INSERT INTO usage_daily ({keys}, {measures}) SELECT {keys}, {sums} FROM usage_daily_old GROUP BY {keys}"
    )
    op.execute(
        f"INSERT INTO usage_daily_errors ({keys}, error_class, {measures}) "
        f"SELECT {keys}, error_class, {measures} FROM usage_daily_old WHERE error_class <> ''"
    )
    op.drop_table("usage_daily_old")


def downgrade() -> None:
    _set_aside()
    _create("usage_daily", (*_DIMENSIONS, "error_class"))
    keys = ", ".join(("account_id", "day", *_DIMENSIONS))
    measures = ", ".join(_MEASURES)
    op.execute(
        f"INSERT INTO usage_daily ({keys}, error_class, {measures}) "
        f"SELECT {keys}, '', {measures} FROM usage_daily_old WHERE status = 'ok'"
    )
    op.execute(
        f"INSERT INTO usage_daily ({keys}, error_class, {measures}) "
        f"SELECT {keys}, error_class, {measures} FROM usage_daily_errors"
    )
    op.drop_table("usage_daily_errors")
    op.drop_table("usage_daily_old")
