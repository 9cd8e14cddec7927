"""latency sketches: mergeable latency and time-to-first-token summaries per quarter hour and per local day

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 10:00:00.000000

Percentiles over any range are read from these sketches, never from the raw events. Both tables are filled from
`usage_events` (only requests with a latency, or streamed ones with a time to first token: proxied requests, which
are never voided), one account at a time in time order, under the writer id `migration-0015`: a frozen copy of
`farebox.core.latency`'s mapping and encoding, as a migration must be. Downgrading drops them.
"""

import math
import struct
import sys
from array import array
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GROUP = ("key_id", "provider", "model", "writer")
_WRITER = "migration-0015"
_ACCURACY = 0.01
_MULTIPLIER = 1 / math.log1p(2 * _ACCURACY / (1 - _ACCURACY)) * math.log(2)
_HEADER = struct.Struct("<BhQ")
_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
_EPOCH = date(1970, 1, 1).toordinal()
_BATCH = 1_000


def _columns() -> list[sa.Column[Any]]:
    return [
        *(sa.Column(name, sa.Text(), nullable=False) for name in _GROUP[:-1]),
        sa.Column("writer", sa.String(length=32), nullable=False),
        sa.Column("latency", sa.LargeBinary(), nullable=True),
        sa.Column("ttft", sa.LargeBinary(), nullable=True),
    ]


class _Sketch:
    """Zeros, and counts by bin (DDSketch's logarithmic mapping at 1%)."""

    def __init__(self) -> None:
        self.zeros = 0
        self.bins: dict[int, int] = {}

    def add(self, ms: int) -> None:
        if ms <= 0:
            self.zeros += 1
        else:
            key = math.ceil(math.log(ms, 2) * _MULTIPLIER)
            self.bins[key] = self.bins.get(key, 0) + 1

    def encode(self) -> bytes | None:
        """`<BhQ` (bytes per count, first bin, zeros), then every bin's count to the last, in the narrowest width."""
        if not self.zeros and not self.bins:
            return None
        first = min(self.bins, default=0)
        counts = [self.bins.get(key, 0) for key in range(first, max(self.bins, default=-1) + 1)]
        top = max(counts, default=0)
        width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
        packed = array(_CODES[width], counts)
        if sys.byteorder == "big":
            packed.byteswap()
        return _HEADER.pack(width, first, self.zeros) + packed.tobytes()


def _groups(rows: Any, zones: dict[str, ZoneInfo]) -> Iterator[tuple[str, tuple[Any, ...], _Sketch, _Sketch]]:
    """Each (table, group, latency, ttft) of rows in (account, time) order, a group yielded once its time has passed."""
    quarters: dict[tuple[Any, ...], tuple[_Sketch, _Sketch]] = {}
    days: dict[tuple[Any, ...], tuple[_Sketch, _Sketch]] = {}
    account, bucket, day = None, -1, -1
    days_of: dict[int, int] = {}
    for account_id, ts_us, key_id, provider, model, latency, ttft, streamed in rows:
        if not streamed:
            ttft = None  # a time to first token counts for streamed requests only
        if latency is None and ttft is None:
            continue
        now = ts_us // 900_000_000 * 900
        if account_id != account or now != bucket:
            yield from (("latency_sketches", group, *pair) for group, pair in quarters.items())
            quarters.clear()
            if account_id != account:
                days_of.clear()
            local = days_of.get(now)
            if local is None:
                tz = zones.get(account_id, ZoneInfo("UTC"))
                local = days_of[now] = datetime.fromtimestamp(now, UTC).astimezone(tz).date().toordinal() - _EPOCH
            if account_id != account or local != day:
                yield from (("latency_sketches_daily", group, *pair) for group, pair in days.items())
                days.clear()
            account, bucket, day = account_id, now, local
        rest = (key_id or "", provider, model)
        for pair in (
            quarters.setdefault((now, account_id, *rest), (_Sketch(), _Sketch())),
            days.setdefault((account_id, day, *rest), (_Sketch(), _Sketch())),
        ):
            if latency is not None:
                pair[0].add(latency)
            if ttft is not None:
                pair[1].add(ttft)
    yield from (("latency_sketches", group, *pair) for group, pair in quarters.items())
    yield from (("latency_sketches_daily", group, *pair) for group, pair in days.items())


def _fill() -> None:
    connection = op.get_bind()
    zones = {row[0]: ZoneInfo(row[1]) for row in connection.execute(sa.text("SELECT id, timezone FROM accounts"))}
    names = {
        "latency_sketches": ("bucket", "account_id", "key_id", "provider", "model"),
        "latency_sketches_daily": ("account_id", "day", "key_id", "provider", "model"),
    }
    tables = {
        name: sa.table(name, *(sa.column(column) for column in (*group, "writer", "latency", "ttft")))
        for name, group in names.items()
    }
    rows = connection.execute(
        sa.text(
            "SELECT account_id, ts_us, key_id, provider, model, latency_ms, ttft_ms, streamed FROM usage_events "
            "WHERE latency_ms IS NOT NULL OR ttft_ms IS NOT NULL ORDER BY account_id, ts_us"
        ).execution_options(yield_per=10_000)  # a server-side cursor on PostgreSQL: memory holds one page
    )
    pending: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for table, group, latency, ttft in _groups(rows, zones):
        row = dict(zip(names[table], group, strict=True))
        pending[table].append(row | {"writer": _WRITER, "latency": latency.encode(), "ttft": ttft.encode()})
        if len(pending[table]) == _BATCH:
            connection.execute(tables[table].insert(), pending[table])
            pending[table] = []
    for table, left in pending.items():
        if left:
            connection.execute(tables[table].insert(), left)


def upgrade() -> None:
    op.create_table(
        "latency_sketches",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("account_id", "bucket", *_GROUP, name="pk_latency_sketches"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("latency_sketches", schema=None) as batch_op:
        batch_op.create_index("ix_latency_sketches_bucket", ["bucket"], unique=False)
    op.create_table(
        "latency_sketches_daily",
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("account_id", "day", *_GROUP, name="pk_latency_sketches_daily"),
        sqlite_with_rowid=False,
    )
    _fill()


def downgrade() -> None:
    op.drop_table("latency_sketches_daily")
    with op.batch_alter_table("latency_sketches", schema=None) as batch_op:
        batch_op.drop_index("ix_latency_sketches_bucket")
    op.drop_table("latency_sketches")
