"""webhook bearer tokens and retry policies: what the analytics webhooks settings give an endpoint

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 03:30:00.000000

An endpoint may carry a bearer token (sealed under the server secret) sent as `Authorization` besides the Standard
Webhooks signature, its own retry policy (most retries, first delay), and a mark that the analytics webhooks
settings manage it. Every endpoint before it has none of these: the server's retry schedule, no token.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("bearer_token", sa.Text()),
    ("max_retries", sa.Integer()),
    ("retry_delay_ms", sa.Integer()),
    ("managed_by", sa.String(16)),
)


def upgrade() -> None:
    for name, kind in _COLUMNS:
        op.add_column("webhook_endpoints", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for name, _kind in reversed(_COLUMNS):
        op.drop_column("webhook_endpoints", name)
