"""An account's alert rules and the alerts it fired, read and written through the ledger's `AlertState`.

The ledger keeps the rules as one JSON document per account; they are validated here, as `AlertConfig`,
on the way in and on the way out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from farebox.alerts.config import AlertConfig
from farebox.ledger.alert_state import AlertState, FiredAlertRow
from farebox.ledger.base import Ledger

__all__ = ["AlertStore", "parse_configs"]


def parse_configs(stored: Mapping[str, dict[str, Any] | None]) -> dict[str, AlertConfig]:
    """Each account's alert rules from their stored documents (the defaults for an account that set none)."""
    return {
        account_id: AlertConfig() if document is None else AlertConfig.model_validate(document)
        for account_id, document in stored.items()
    }


class AlertStore:
    """Reads and replaces an account's alert rules; reads the alerts it fired."""

    def __init__(self, ledger: Ledger) -> None:
        self._state = AlertState(ledger)

    async def get(self, account_id: str) -> AlertConfig:
        """The account's rules (the defaults until it sets some)."""
        return parse_configs(await self._state.load_configs([account_id]))[account_id]

    async def put(self, account_id: str, config: AlertConfig, *, at: datetime) -> None:
        """Replace the account's rules (the account must exist: the caller checked)."""
        await self._state.put_config(account_id, config.model_dump(mode="json"), at=at)

    async def history(self, account_id: str, *, limit: int, since: datetime | None = None) -> list[dict[str, Any]]:
        """The alerts the account fired, newest first."""
        return [
            {
                "rule": row.rule,
                "event_type": row.evidence.get("event_type"),
                "scope": row.scope,
                "scope_id": row.scope_id,
                "period_start": row.period_start.isoformat(),
                "fired_at": row.fired_at.isoformat(),
                "text": row.evidence.get("text"),
                "evidence": row.data,
            }
            for row in await self._state.history(account_id, limit=limit, since=since)
        ]

    async def anomalies(
        self, account_id: str | None, *, since: datetime, until: datetime, limit: int
    ) -> list[FiredAlertRow]:
        """What the anomaly detectors found for the account (None: every account), fired at or after `since` and
        before `until`, newest first."""
        return await self._state.history(account_id, limit=limit, since=since, until=until, rule_prefix="anomaly:")
