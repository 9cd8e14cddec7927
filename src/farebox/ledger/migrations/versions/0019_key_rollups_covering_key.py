"""key rollups' covering key: on PostgreSQL the primary key of `usage_key_rollups` carries the measures read

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 00:00:00.000000

PostgreSQL keeps a table's rows in a heap apart from its indexes, so an account's range of quarter hours was ~150,000
scattered row look-ups for a month of a busy account, or a scan of the whole table (224 ms and 169 ms at 10 million
events). The primary key now includes the measures the read side sums (cost, requests, input and output tokens,
latency), so those reads are index-only scans of one range (~40 ms). SQLite keeps the table in primary-key order
already (`WITHOUT ROWID`): nothing changes there. The downgrade puts the plain key back.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = ["account_id", "bucket", "key_id", "status"]
_INCLUDED = ["cost_nano", "requests", "input_tokens", "output_tokens", "latency_ms_sum"]


def _key(include: list[str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    included = f" INCLUDE ({', '.join(include)})" if include else ""
    op.execute(
        "ALTER TABLE usage_key_rollups DROP CONSTRAINT pk_usage_key_rollups, "
        f"ADD CONSTRAINT pk_usage_key_rollups PRIMARY KEY ({', '.join(_KEY)}){included}"
    )


def upgrade() -> None:
    _key(_INCLUDED)


def downgrade() -> None:
    _key([])
