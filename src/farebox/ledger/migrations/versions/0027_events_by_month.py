"""events by month: on PostgreSQL `usage_events` becomes a table partitioned by UTC month of `ts_us`

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 09:00:00.000000

PostgreSQL only (SQLite keeps its one table). See `farebox.ledger.partitions`.

- `usage_event_ids` (id primary key, ts_us) holds what made an event id unique, filled from the events.
- The events table is renamed and becomes the first partition, for every time before the next month begins
  (`usage_events_until_YYYY_MM`): no row is copied, its indexes are renamed and attached as they are, and only an
  index on `id` is built for it. An empty events table is dropped instead, so a new ledger has month partitions
  only.
- The parent, partitioned by range of `ts_us`, has the indexes, a default partition, and the partitions of the
  months ahead (`farebox.ledger.partitions.add_months`).
- The adjustments' foreign key to the events goes: a partitioned table's unique index must hold the partition key.
  The writer looks the event up before it adjusts it, as it did before.

Going down copies every row back into one table, restores its key, indexes and the foreign key, and drops the ids.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op

from farebox.core.events import epoch_us
from farebox.ledger.partitions import DEFAULT, IDS, PARENT, add_months, month_start, next_month

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {
    "ix_usage_events_account_ts_id": "account_id, ts_us, id",
    "ix_usage_events_key_ts": "key_id, ts_us",
    "ix_usage_events_account_recorded": "account_id, recorded_at_us, id",
    "ix_usage_events_id": "id",
}
_ADJUSTMENTS_FK = "usage_adjustments_event_id_fkey"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    run = bind.exec_driver_sql
    now = datetime.now(UTC)
    run(f"CREATE TABLE {IDS} (id VARCHAR(128) PRIMARY KEY, ts_us BIGINT NOT NULL)")
    run(f"INSERT INTO {IDS} (id, ts_us) SELECT id, ts_us FROM {PARENT}")
    run(f"CREATE INDEX ix_{IDS}_ts ON {IDS} (ts_us)")
    run(f"ALTER TABLE usage_adjustments DROP CONSTRAINT {_ADJUSTMENTS_FK}")
    upper = next_month(month_start(now))
    first = f"{PARENT}_until_{upper.year:04d}_{upper.month:02d}"
    keep = run(f"SELECT EXISTS (SELECT 1 FROM {PARENT})").scalar()
    if keep:
        run(f"ALTER TABLE {PARENT} RENAME TO {first}")
        for index in _INDEXES:
            if index != "ix_usage_events_id":
                run(f"ALTER INDEX {index} RENAME TO {first}_{index.removeprefix('ix_usage_events_')}")
        run(f"ALTER TABLE {first} RENAME CONSTRAINT usage_events_pkey TO {first}_pkey")
        like = first
    else:
        run(f"ALTER TABLE {PARENT} RENAME TO {PARENT}_empty")
        like = f"{PARENT}_empty"
    run(f"CREATE TABLE {PARENT} (LIKE {like} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (ts_us)")
    if not keep:
        run(f"DROP TABLE {like}")
    for index, columns in _INDEXES.items():
        run(f"CREATE INDEX {index} ON {PARENT} ({columns})")
    if keep:
        # The partition constraint is checked by one scan of the table.
        run(f"ALTER TABLE {PARENT} ATTACH PARTITION {first} FOR VALUES FROM (MINVALUE) TO ({epoch_us(upper)})")
    run(f"CREATE TABLE {DEFAULT} PARTITION OF {PARENT} DEFAULT")
    add_months(bind, now=now)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    run = bind.exec_driver_sql
    run(f"CREATE TABLE {PARENT}_one (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    run(f"INSERT INTO {PARENT}_one SELECT * FROM {PARENT}")
    run(f"DROP TABLE {PARENT}")
    run(f"ALTER TABLE {PARENT}_one RENAME TO {PARENT}")
    run(f"ALTER TABLE {PARENT} ADD CONSTRAINT usage_events_pkey PRIMARY KEY (id)")
    for index, columns in _INDEXES.items():
        if index != "ix_usage_events_id":
            run(f"CREATE INDEX {index} ON {PARENT} ({columns})")
    foreign_key = f"FOREIGN KEY (event_id) REFERENCES {PARENT} (id)"
    run(f"ALTER TABLE usage_adjustments ADD CONSTRAINT {_ADJUSTMENTS_FK} {foreign_key}")
    run(f"DROP TABLE {IDS}")
