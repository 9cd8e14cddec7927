"""one daily cube with every dimension, in place of the two narrower ones

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 13:40:00.000000

`usage_daily` keeps every rollup dimension (key, member, agent, app, model, operation, status...) per local day,
so `/api/usage` (day x agent x model x operation) reads it too; `usage_daily_people` goes. One cube is one upsert
per commit where there were two. On SQLite it is stored in its primary key's order (`WITHOUT ROWID`), so an
account's range of days is read in one pass instead of a row look-up per index entry. Filled from the
quarter-hour rollups, each account's days bounded in its own zone as it is now: a frozen copy of the summing,
as a migration must be (`farebox.ledger.daily` does the same for later zone changes).
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
_ONE_CUBE = {
    "usage_daily": (
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
    ),
}
_TWO_CUBES = {
    "usage_daily": ("key_id", "member_id", "axis", "provider", "model", "canonical_model", "operation", "status"),
    "usage_daily_people": ("member_id", "agent_id", "app", "axis", "status"),
}
_EPOCH = date(1970, 1, 1).toordinal()


def upgrade() -> None:
    _replace(_TWO_CUBES, _ONE_CUBE, clustered=True)


def downgrade() -> None:
    _replace(_ONE_CUBE, _TWO_CUBES, clustered=False)


def _replace(old: Mapping[str, Sequence[str]], new: Mapping[str, Sequence[str]], *, clustered: bool) -> None:
    """Drop the `old` cubes, create the `new` ones (on SQLite `clustered`: stored in primary-key order) and fill
    them from the rollups."""
    for name in old:
        op.drop_table(name)
    for name, dimensions in new.items():
        op.create_table(
            name,
            sa.Column("account_id", sa.Text(), nullable=False),
            sa.Column("day", sa.Integer(), nullable=False),
            *(sa.Column(column, sa.Text(), nullable=False) for column in dimensions),
            *(sa.Column(column, sa.BigInteger(), nullable=False) for column in _MEASURES),
            sa.PrimaryKeyConstraint("account_id", "day", *dimensions, name=f"pk_{name}"),
            sqlite_with_rowid=not clustered,
        )
    connection = op.get_bind()
    zones: dict[str, str] = {
        str(row[0]): str(row[1]) for row in connection.execute(sa.text("SELECT id, timezone FROM accounts"))
    }
    for account_id in connection.execute(sa.text("SELECT DISTINCT account_id FROM usage_rollups")).scalars():
        tz = ZoneInfo(zones.get(account_id) or "UTC")
        for name, dimensions in new.items():
            _fill(connection, name, dimensions, account_id, tz)


def _fill(connection: sa.Connection, name: str, dimensions: Sequence[str], account_id: str, tz: ZoneInfo) -> None:
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
    insert = sa.text(f"INSERT INTO {name} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})")
    rows = [dict(zip(names, (account_id, *key, *total), strict=True)) for key, total in totals.items()]
    for start in range(0, len(rows), 500):
        connection.execute(insert, rows[start : start + 500])
