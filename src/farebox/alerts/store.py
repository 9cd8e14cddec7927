"""Where alert rules and fired alerts are kept: `alert_settings` (one JSON document per account) and `alert_firings`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from farebox.alerts.config import AlertConfig
from farebox.core.events import epoch_us, from_epoch_us
from farebox.ledger.base import Ledger
from farebox.ledger.schema import alert_firings, alert_settings

__all__ = ["AlertStore", "load_configs"]


def load_configs(connection: Connection, account_ids: Iterable[str]) -> dict[str, AlertConfig]:
    """Each account's alert rules (the defaults for an account that set none)."""
    ids = list(set(account_ids))
    query = select(alert_settings.c.account_id, alert_settings.c.config).where(alert_settings.c.account_id.in_(ids))
    found = {row.account_id: AlertConfig.model_validate(row.config) for row in connection.execute(query)}
    return {account_id: found.get(account_id) or AlertConfig() for account_id in ids}


class AlertStore:
    """Reads and replaces an account's alert rules; reads the alerts it fired."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def get(self, account_id: str) -> AlertConfig:
        """The account's rules (the defaults until it sets some)."""
        return (await self._ledger.read(lambda c: load_configs(c, [account_id])))[account_id]

    async def put(self, account_id: str, config: AlertConfig, *, at: datetime) -> None:
        """Replace the account's rules (the account must exist: the caller checked)."""
        row = {"account_id": account_id, "config": config.model_dump(mode="json"), "updated_at": int(at.timestamp())}

        def write(connection: Connection) -> None:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(alert_settings).values(row)
            changes = {"config": statement.excluded.config, "updated_at": statement.excluded.updated_at}
            connection.execute(statement.on_conflict_do_update(index_elements=["account_id"], set_=changes))

        await self._ledger.write(write)

    async def history(self, account_id: str, *, limit: int, since: datetime | None = None) -> list[dict[str, Any]]:
        """The alerts the account fired, newest first."""
        query = (
            select(alert_firings)
            .where(alert_firings.c.account_id == account_id)
            .order_by(alert_firings.c.fired_at_us.desc())
            .limit(limit)
        )
        if since is not None:
            query = query.where(alert_firings.c.fired_at_us >= epoch_us(since))
        rows = await self._ledger.read(lambda c: c.execute(query).mappings().all())
        return [
            {
                "rule": row["rule"],
                "event_type": row["evidence"].get("event_type"),
                "scope": row["scope"],
                "scope_id": row["scope_id"],
                "period_start": datetime.fromtimestamp(row["period_start"], UTC).isoformat(),
                "fired_at": from_epoch_us(row["fired_at_us"]).isoformat(),
                "text": row["evidence"].get("text"),
                "evidence": {k: v for k, v in row["evidence"].items() if k not in ("event_type", "text")},
            }
            for row in rows
        ]
