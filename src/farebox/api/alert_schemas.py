"""Bodies of the alert API (alerts fired), and the check an account's alert rules pass before they are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from farebox.alerts.config import AlertConfig
from farebox.api.webhook_schemas import checked_url
from farebox.core.owners import invalid
from farebox.ledger.directory import Directory

__all__ = ["FiredList", "FiredOut", "check_rules"]


class FiredOut(BaseModel):
    rule: str = Field(description="`threshold:<fraction>`, `credits_low`, `budget_exceeded` or `anomaly:<kind>`.")
    event_type: str
    scope: str
    scope_id: str
    period_start: datetime = Field(description="The period (or day) within which this alert fires once.")
    fired_at: datetime
    text: str
    evidence: dict[str, Any]


class FiredList(BaseModel):
    data: list[FiredOut]


async def check_rules(
    config: AlertConfig, *, account_id: str, directory: Directory, smtp_configured: bool, allow_private: bool
) -> None:
    """Refuse rules whose actions have nowhere to go (an `email` without recipients, of its threshold or of the
    account, or without SMTP; a `slack` without a Slack URL; a `pagerduty` without a routing key), or that name keys
    of another account.

    Raises:
        ValidationFailed: naming the field at fault (422).
    """
    used = config.actions_used()
    if config.mails_nobody():
        raise invalid("email_recipients", "an `email` action needs at least one recipient")
    if "email" in used and not smtp_configured:
        raise invalid("actions", "an `email` action needs the smtp_host setting (farebox has no SMTP server)")
    if "slack" in used and not config.slack_webhook_url:
        raise invalid("slack_webhook_url", "a `slack` action needs the Slack incoming-webhook URL")
    if "pagerduty" in used and not config.pagerduty_routing_key:
        raise invalid("pagerduty_routing_key", "a `pagerduty` action needs the PagerDuty routing key")
    if config.slack_webhook_url:
        await checked_url(config.slack_webhook_url, allow_private=allow_private, field="slack_webhook_url")
    if config.key_overrides:
        found = await directory.find_keys(list(config.key_overrides))
        for key_id in config.key_overrides:
            key = found.get(key_id)
            if key is None or key.account_id != account_id:
                raise invalid("key_overrides", f"no key {key_id!r} in account {account_id!r}")
