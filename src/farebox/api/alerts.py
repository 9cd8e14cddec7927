"""Alert rules and fired alerts under /api/admin/accounts/{id}/alerts. Same authentication as the admin API.

`GET .../alerts` gives the account's rules (the defaults until it sets some); `PUT .../alerts` replaces them
(the `AlertConfig` shape; thresholds and amounts as exact decimals); `GET .../alerts/history` lists what fired,
newest first, with the evidence. Rules are refused (422) when an action has nowhere to go: `email` without
recipients or without `smtp_host`, `slack` without a Slack URL, or a Slack URL that is refused as a webhook
URL would be. Key overrides must name keys of the account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from farebox.alerts.config import AlertConfig
from farebox.alerts.store import AlertStore
from farebox.api.admin_schemas import DecimalJSONRoute
from farebox.api.auth import Principal, require_admin
from farebox.api.webhooks import checked_url
from farebox.core.directory import invalid
from farebox.ledger.directory import Directory

__all__ = ["FiredOut", "check_rules", "router"]

router = APIRouter(prefix="/api/admin/accounts", tags=["alerts"], route_class=DecimalJSONRoute)

Admin = Annotated[Principal, Depends(require_admin)]


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


def _store(request: Request) -> AlertStore:
    store: AlertStore = request.app.state.alert_store
    return store


Store = Annotated[AlertStore, Depends(_store)]


async def check_rules(
    config: AlertConfig, *, account_id: str, directory: Directory, smtp_configured: bool, allow_private: bool
) -> None:
    """Refuse rules whose actions have nowhere to go, or that name keys of another account.

    Raises:
        ValidationFailed: naming the field at fault (422).
    """
    used = config.actions_used()
    if "email" in used and not config.email_recipients:
        raise invalid("email_recipients", "an `email` action needs at least one recipient")
    if "email" in used and not smtp_configured:
        raise invalid("actions", "an `email` action needs the smtp_host setting (farebox has no SMTP server)")
    if "slack" in used and not config.slack_webhook_url:
        raise invalid("slack_webhook_url", "a `slack` action needs the Slack incoming-webhook URL")
    if config.slack_webhook_url:
        await checked_url(config.slack_webhook_url, allow_private=allow_private, field="slack_webhook_url")
    if config.key_overrides:
        found = await directory.find_keys(list(config.key_overrides))
        for key_id in config.key_overrides:
            key = found.get(key_id)
            if key is None or key.account_id != account_id:
                raise invalid("key_overrides", f"no key {key_id!r} in account {account_id!r}")


@router.get("/{account_id}/alerts", summary="An account's alert rules")
async def get_alerts(account_id: str, request: Request, principal: Admin, store: Store) -> AlertConfig:
    principal.require_account(account_id)
    await request.app.state.directory.get_account(account_id)
    return await store.get(account_id)


@router.put("/{account_id}/alerts", summary="Replace an account's alert rules")
async def put_alerts(
    account_id: str, config: AlertConfig, request: Request, principal: Admin, store: Store
) -> AlertConfig:
    """Replace every rule; the next commit that moves spend is checked against the new rules."""
    principal.require_account(account_id)
    directory: Directory = request.app.state.directory
    await directory.get_account(account_id)
    settings = request.app.state.settings
    await check_rules(
        config,
        account_id=account_id,
        directory=directory,
        smtp_configured=settings.smtp_host is not None,
        allow_private=settings.allow_private_webhook_urls,
    )
    await store.put(account_id, config, at=directory.now())
    return config


@router.get("/{account_id}/alerts/history", summary="Alerts an account fired")
async def alert_history(
    account_id: str,
    request: Request,
    principal: Admin,
    store: Store,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    since: Annotated[datetime | None, Query(description="Only alerts fired at or after this time.")] = None,
) -> FiredList:
    """Each fired alert: rule, event type, key/member/account, period, when, the text and the evidence."""
    principal.require_account(account_id)
    await request.app.state.directory.get_account(account_id)
    return FiredList(data=[FiredOut(**row) for row in await store.history(account_id, limit=limit, since=since)])
