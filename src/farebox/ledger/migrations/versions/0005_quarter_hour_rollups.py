"""quarter-hour rollups with the app: usage_rollups replaces usage_rollups_hourly, filled from the events

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 12:00:00.000000

Hourly UTC rollups cannot group a day exactly in a zone at +05:30 or +05:45; quarter hours can, in every zone
in use. The new table is filled from `usage_events` (voided events left out, as the writer nets them out), so
no history is lost; the downgrade refills the hourly table the same way.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIMENSIONS = ("account_id", "key_id", "member_id", "agent_id", "axis", "provider", "model", "canonical_model")
_DIMENSIONS_AFTER = ("operation", "status")
_SUMMED = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "characters",
    "seconds_micro",
    "quantity_micro",
    "cost_nano",
)
_MEASURES = ("requests", *_SUMMED, "unpriced_requests", "estimated_requests", "latency_ms_sum")


def _table(name: str, bucket: str, dimensions: Sequence[str]) -> None:
    op.create_table(
        name,
        sa.Column(bucket, sa.BigInteger(), nullable=False),
        *(sa.Column(column, sa.Text(), nullable=False) for column in dimensions),
        *(sa.Column(column, sa.BigInteger(), nullable=False) for column in _MEASURES),
        sa.PrimaryKeyConstraint(bucket, *dimensions, name=f"pk_{name}"),
    )


def _fill(name: str, bucket: str, seconds: int, dimensions: Sequence[str]) -> None:
    """Sum the events that were not voided into `name`, one row per `seconds` bucket and dimensions."""
    keys = [f"COALESCE({column}, '')" for column in dimensions]
    sums = [
        "COUNT(*)",
        *(f"SUM({column})" for column in _SUMMED),
        "SUM(CASE WHEN priced THEN 0 ELSE 1 END)",
        "SUM(CASE WHEN estimated THEN 1 ELSE 0 END)",
        "SUM(COALESCE(latency_ms, 0))",
    ]
    start = f"(ts_us / {seconds * 1_000_000}) * {seconds}"
    op.execute(
        f"INSERT INTO {name} ({bucket}, {', '.join(dimensions)}, {', '.join(_MEASURES)}) "
        f"SELECT {start}, {', '.join(keys)}, {', '.join(sums)} FROM usage_events "
        "WHERE id NOT IN (SELECT event_id FROM usage_adjustments) "
        f"GROUP BY {start}, {', '.join(keys)}"
    )


def upgrade() -> None:
    dimensions = (*_DIMENSIONS[:4], "app", *_DIMENSIONS[4:], *_DIMENSIONS_AFTER)
    _table("usage_rollups", "bucket", dimensions)
    _fill("usage_rollups", "bucket", 900, dimensions)
    with op.batch_alter_table("usage_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_usage_rollups_account_bucket", ["account_id", "bucket"], unique=False)
    with op.batch_alter_table("usage_rollups_hourly", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_rollups_account_hour")
    op.drop_table("usage_rollups_hourly")


def downgrade() -> None:
    dimensions = (*_DIMENSIONS, *_DIMENSIONS_AFTER)
    _table("usage_rollups_hourly", "hour", dimensions)
    _fill("usage_rollups_hourly", "hour", 3600, dimensions)
    with op.batch_alter_table("usage_rollups_hourly", schema=None) as batch_op:
        batch_op.create_index("ix_usage_rollups_account_hour", ["account_id", "hour"], unique=False)
    with op.batch_alter_table("usage_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_rollups_account_bucket")
    op.drop_table("usage_rollups")
