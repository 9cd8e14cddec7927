"""Alert rules and fired alerts under /api/admin/accounts/{id}/alerts. Same authentication as the admin API.

`GET .../alerts` gives the account's rules (the defaults until it sets some); `PUT .../alerts` replaces them
(the `AlertConfig` shape; thresholds and amounts as exact decimals); `GET .../alerts/history` lists what fired,
newest first, with the evidence. Rules are refused (422) when an action has nowhere to go: `email` without
recipients or without `smtp_host`, `slack` without a Slack URL, `pagerduty` without a routing key, or a Slack URL
that is refused as a webhook URL would be. Key overrides must name keys of the account. A PagerDuty routing key is
answered sealed (`farebox.alerts.store`). Bodies and that check: `farebox.api.alert_schemas`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from farebox.alerts.config import AlertConfig
from farebox.alerts.store import AlertStore
from farebox.api.alert_schemas import FiredList, FiredOut, check_rules
from farebox.api.exact_json import DecimalJSONRoute
from farebox.api.openapi import errors
from farebox.core.credentials import Principal
from farebox.core.json_types import Time
from farebox.services import authenticate, services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/accounts", tags=["alerts"], route_class=DecimalJSONRoute)

Caller = Annotated[Principal, Depends(authenticate)]


def _store(request: Request) -> AlertStore:
    store = services(request).alerts
    return store


Store = Annotated[AlertStore, Depends(_store)]


@router.get("/{account_id}/alerts", summary="An account's alert rules")
async def get_alerts(account_id: str, request: Request, principal: Caller, store: Store) -> AlertConfig:
    principal.require_read(account_id)
    await services(request).directory.get_account(account_id)
    return await store.get(account_id)


@router.put(
    "/{account_id}/alerts",
    summary="Replace an account's alert rules",
    responses=errors(
        {
            422: "A field is missing, unknown or bad (`error.details` names each); or an action has nowhere to go "
            "(`email` without recipients or without the `smtp_host` setting, `slack` without `slack_webhook_url`, "
            "`pagerduty` without `pagerduty_routing_key`), a URL is refused as a webhook URL would be, a sealed "
            "routing key does not open for this account, `key_overrides` names a key of another account, a scope "
            "repeats a threshold fraction, or `runaway_quiet_days` exceeds `runaway_days`."
        }
    ),
)
async def put_alerts(
    account_id: str, config: AlertConfig, request: Request, principal: Caller, store: Store
) -> AlertConfig:
    """Replace every rule; the next commit that moves spend is checked against the new rules."""
    principal.require_manage(account_id)
    directory = services(request).directory
    await directory.get_account(account_id)
    found = services(request)
    await check_rules(
        config,
        account_id=account_id,
        directory=directory,
        smtp_configured=found.smtp_configured,
        allow_private=found.allow_private_webhook_urls,
    )
    return await store.put(account_id, config, at=directory.now())


@router.get("/{account_id}/alerts/history", summary="Alerts an account fired")
async def alert_history(
    account_id: str,
    request: Request,
    principal: Caller,
    store: Store,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    since: Annotated[Time | None, Query(description="Only alerts fired at or after this time.")] = None,
) -> FiredList:
    """Each fired alert: rule, event type, key/member/account, period, when, the text and the evidence."""
    principal.require_read(account_id)
    await services(request).directory.get_account(account_id)
    return FiredList(data=[FiredOut(**row) for row in await store.history(account_id, limit=limit, since=since)])
