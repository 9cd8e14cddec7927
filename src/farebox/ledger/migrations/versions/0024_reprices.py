"""reprices: an event is voided at most once, but may be repriced each time its price changes

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 04:00:00.000000

Adjustments gain `unit_prices` (what a reprice charged; NULL for voids). The unique index on (event, kind)
becomes a unique index on the event among voids only, and a plain index on (event, kind) for reading an event's
adjustments. Going down refuses while any event holds two adjustments of one kind (reprices), which the old index
cannot hold.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VOIDS_ONLY = sa.text("kind = 'void'")


def upgrade() -> None:
    with op.batch_alter_table("usage_adjustments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_prices", sa.JSON(), nullable=True))
        batch_op.drop_index("uq_usage_adjustments_event_kind")
        batch_op.create_index("ix_usage_adjustments_event_kind", ["event_id", "kind"], unique=False)
        batch_op.create_index(
            "uq_usage_adjustments_void",
            ["event_id"],
            unique=True,
            sqlite_where=_VOIDS_ONLY,
            postgresql_where=_VOIDS_ONLY,
        )


def downgrade() -> None:
    repeated = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM (SELECT 1 FROM usage_adjustments GROUP BY event_id, kind HAVING count(*) > 1) r")
    )
    if repeated:
        raise RuntimeError(
            f"{repeated} events hold more than one adjustment of a kind (reprices): revision 0023 cannot hold them"
        )
    with op.batch_alter_table("usage_adjustments", schema=None) as batch_op:
        batch_op.drop_index("uq_usage_adjustments_void")
        batch_op.drop_index("ix_usage_adjustments_event_kind")
        batch_op.create_index("uq_usage_adjustments_event_kind", ["event_id", "kind"], unique=True)
        batch_op.drop_column("unit_prices")
