"""An account's alert rules and the alerts it fired, read and written through the ledger's `AlertState`.

The ledger keeps the rules as one JSON document per account; they are validated here, as `AlertConfig`,
on the way in and on the way out. A PagerDuty routing key is sealed on the way in (`ledger.signing_secrets`, under
the webhook-secrets key of the server secret, bound to its account), so the document, every answer that shows
the rules and every outbox row that carries the key hold it sealed; only the sender opens it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from farebox.alerts.config import AlertConfig
from farebox.core.owners import invalid
from farebox.core.sealing import SecretBox, UnreadableSecret
from farebox.ledger.alert_state import AlertState, FiredAlertRow
from farebox.ledger.base import Ledger
from farebox.ledger.signing_secrets import load_cipher, open_routing_key, seal_routing_key

__all__ = ["AlertStore", "parse_configs"]


def parse_configs(stored: Mapping[str, dict[str, Any] | None]) -> dict[str, AlertConfig]:
    """Each account's alert rules from their stored documents (the defaults for an account that set none)."""
    return {
        account_id: AlertConfig() if document is None else AlertConfig.model_validate(document)
        for account_id, document in stored.items()
    }


class AlertStore:
    """Reads and replaces an account's alert rules; reads the alerts it fired.

    `box` seals PagerDuty routing keys (None: rules that bring a routing key in plain text cannot be stored).
    """

    def __init__(self, ledger: Ledger, box: SecretBox | None = None) -> None:
        self._state = AlertState(ledger)
        self._box = box

    async def get(self, account_id: str) -> AlertConfig:
        """The account's rules (the defaults until it sets some)."""
        return (await self.get_many([account_id]))[account_id]

    async def get_many(self, account_ids: Collection[str]) -> dict[str, AlertConfig]:
        """Each account's rules, by id, in one read."""
        return parse_configs(await self._state.load_configs(account_ids))

    async def put(self, account_id: str, config: AlertConfig, *, at: datetime) -> AlertConfig:
        """Replace the account's rules (the account must exist: the caller checked); the rules as stored.

        Raises:
            ValidationFailed: `pagerduty_routing_key` is a sealed value that does not open for this account (422).
        """
        config = await self._sealed(account_id, config)
        await self._state.put_config(account_id, config.model_dump(mode="json"), at=at)
        return config

    async def _sealed(self, account_id: str, config: AlertConfig) -> AlertConfig:
        """`config` with its routing key sealed; one given sealed (as rules are answered) must open for this account."""
        given = config.pagerduty_routing_key
        if given is None:
            return config
        if self._box is None:
            raise ValueError("this AlertStore has no SecretBox to seal a PagerDuty routing key with")
        await load_cipher(self._box)
        if not SecretBox.is_sealed(given):
            return config.model_copy(update={"pagerduty_routing_key": seal_routing_key(self._box, account_id, given)})
        try:
            open_routing_key(self._box, account_id, given)
        except UnreadableSecret as exc:
            raise invalid("pagerduty_routing_key", f"this sealed routing key does not open here: {exc}") from None
        return config

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
