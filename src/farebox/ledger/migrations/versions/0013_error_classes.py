"""the class of an error as a rollup dimension: error rates by type, and a provider's uptime

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 18:20:00.000000

`usage_rollups` and `usage_daily` gain `error_class` (`farebox.core.error_classes`; '' for a request that did
not fail) in their primary keys. Rows of requests that did not fail are copied with ''; the rows of errors are
summed again from `usage_events` (voided events left out, as the writer nets them out), each event classed by
a frozen copy of the rule. The daily cube is then filled from the rollups, each account's days in its own
zone. The downgrade sums the classes away.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIMENSIONS = (
    "account_id",
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
_CLASS = """CASE
    WHEN error_type = 'upstream_timeout' THEN 'timeout'
    WHEN error_type IN ('upstream_unreachable', 'upstream_disconnected') THEN 'connection'
    WHEN error_type IN ('cancelled', 'client_disconnected') THEN 'cancelled'
    WHEN error_type IN ('stream_error', 'overloaded_error', 'api_error', 'server_error', 'internal_error',
        'UNAVAILABLE', 'INTERNAL') THEN 'upstream_error'
    WHEN error_type IN ('rate_limit_error', 'rate_limit_exceeded', 'RESOURCE_EXHAUSTED') THEN 'rate_limited'
    WHEN http_status = 429 THEN 'rate_limited'
    WHEN http_status >= 500 THEN 'upstream_error'
    WHEN http_status >= 400 THEN 'client_error'
    ELSE 'other'
END"""
_EPOCH = date(1970, 1, 1).toordinal()


def upgrade() -> None:
    dimensions = (*_DIMENSIONS, "error_class")
    _set_aside_rollups()
    _rollups(dimensions)
    kept = ", ".join(_DIMENSIONS + _MEASURES)
    op.execute(
        f"INSERT INTO usage_rollups (bucket, {kept}, error_class) "
        f"SELECT bucket, {kept}, '' FROM usage_rollups_old WHERE status <> 'error'"
    )
    keys = [f"COALESCE({column}, '')" for column in _DIMENSIONS]
    sums = [
        "COUNT(*)",
        *(f"SUM({column})" for column in _SUMMED),
        "SUM(CASE WHEN priced THEN 0 ELSE 1 END)",
        "SUM(CASE WHEN estimated THEN 1 ELSE 0 END)",
        "SUM(COALESCE(latency_ms, 0))",
    ]
    start = "(ts_us / 900000000) * 900"
    op.execute(
        f"INSERT INTO usage_rollups (bucket, {', '.join(dimensions)}, {', '.join(_MEASURES)}) "
        f"SELECT {start}, {', '.join(keys)}, {_CLASS}, {', '.join(sums)} FROM usage_events e "
        "WHERE status = 'error' AND NOT EXISTS "
        "(SELECT 1 FROM usage_adjustments a WHERE a.event_id = e.id AND a.kind = 'void') "
        f"GROUP BY {start}, {', '.join(keys)}, {_CLASS}"
    )
    op.drop_table("usage_rollups_old")
    _daily(dimensions[1:])


def downgrade() -> None:
    _set_aside_rollups()
    _rollups(_DIMENSIONS)
    columns = ", ".join(_DIMENSIONS)
    sums = ", ".join(f"SUM({measure})" for measure in _MEASURES)
    op.execute(
        f"INSERT INTO usage_rollups (bucket, {columns}, {', '.join(_MEASURES)}) "
        f"SELECT bucket, {columns}, {sums} FROM usage_rollups_old GROUP BY bucket, {columns}"
    )
    op.drop_table("usage_rollups_old")
    _daily(_DIMENSIONS[1:])


def _set_aside_rollups() -> None:
    """Rename the rollups out of the way, their index and (PostgreSQL) key constraint too, whose names stay."""
    op.drop_index("ix_usage_rollups_account_bucket", table_name="usage_rollups")
    op.rename_table("usage_rollups", "usage_rollups_old")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE usage_rollups_old RENAME CONSTRAINT pk_usage_rollups TO pk_usage_rollups_old")


def _rollups(dimensions: Sequence[str]) -> None:
    op.create_table(
        "usage_rollups",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        *(sa.Column(column, sa.Text(), nullable=False) for column in dimensions),
        *(sa.Column(column, sa.BigInteger(), nullable=False) for column in _MEASURES),
        sa.PrimaryKeyConstraint("bucket", *dimensions, name="pk_usage_rollups"),
    )
    op.create_index("ix_usage_rollups_account_bucket", "usage_rollups", ["account_id", "bucket"])


def _daily(dimensions: Sequence[str]) -> None:
    """Replace the daily cube by one with `dimensions` after (account, day), filled from the rollups."""
    op.drop_table("usage_daily")
    op.create_table(
        "usage_daily",
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        *(sa.Column(column, sa.Text(), nullable=False) for column in dimensions),
        *(sa.Column(column, sa.BigInteger(), nullable=False) for column in _MEASURES),
        sa.PrimaryKeyConstraint("account_id", "day", *dimensions, name="pk_usage_daily"),
        sqlite_with_rowid=False,
    )
    connection = op.get_bind()
    zones: dict[str, str] = {
        str(row[0]): str(row[1]) for row in connection.execute(sa.text("SELECT id, timezone FROM accounts"))
    }
    for account_id in connection.execute(sa.text("SELECT DISTINCT account_id FROM usage_rollups")).scalars():
        _fill(connection, dimensions, account_id, ZoneInfo(zones.get(account_id) or "UTC"))


def _fill(connection: sa.Connection, dimensions: Sequence[str], account_id: str, tz: ZoneInfo) -> None:
    columns = ", ".join(dimensions)
    sums = ", ".join(f"SUM({measure})" for measure in _MEASURES)
    query = (
        f"SELECT bucket, {columns}, {sums} FROM usage_rollups WHERE account_id = :account GROUP BY bucket, {columns}"
    )
    days: dict[int, int] = {}
    totals: dict[tuple[object, ...], list[int]] = {}
    for row in connection.execute(sa.text(query), {"account": account_id}):
        bucket = int(row[0])
        if bucket not in days:
            days[bucket] = datetime.fromtimestamp(bucket, UTC).astimezone(tz).date().toordinal() - _EPOCH
        key = (days[bucket], *row[1 : 1 + len(dimensions)])
        total = totals.setdefault(key, [0] * len(_MEASURES))
        for position, value in enumerate(row[1 + len(dimensions) :]):
            total[position] += int(value)
    names = ("account_id", "day", *dimensions, *_MEASURES)
    insert = sa.text(f"INSERT INTO usage_daily ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})")
    rows = [dict(zip(names, (account_id, *key, *total), strict=True)) for key, total in totals.items()]
    for start in range(0, len(rows), 500):
        connection.execute(insert, rows[start : start + 500])
