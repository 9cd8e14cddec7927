"""`GET` and `PUT /api/admin/budgets/alerts` (seed 004): an account's budget alert settings in the seed's shape.

They are a view of the account's alert rules (`/api/admin/accounts/{id}/alerts`), mapped as
`farebox.api.budget_alert_schemas` says; there is one set of rules, and the cap watcher, the anomaly scanner and
the outbox act on it whichever shape wrote it. Answers are in the seed's envelope (`{"success": true, "data":
...}`, fractions and the multiplier as exact JSON numbers). An account's owners, admins and billing members read
their account's settings; only owners and admins change them. The master key names the account (`account_id`),
since every account has rules of its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from farebox.api.alert_schemas import check_rules
from farebox.api.budget_alert_schemas import BudgetAlertSettings, seed_view
from farebox.api.exact_json import DecimalJSONRoute
from farebox.core.credentials import Principal
from farebox.core.json_numbers import dumps_exact
from farebox.core.owners import Role, invalid
from farebox.errors import NotFound, PermissionDenied
from farebox.services import authenticate, services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/budgets", tags=["budgets"], route_class=DecimalJSONRoute)

Caller = Annotated[Principal, Depends(authenticate)]

_READERS = (Role.OWNER, Role.ADMIN, Role.BILLING)
_WRITERS = (Role.OWNER, Role.ADMIN)
_RESPONSES: dict[int | str, dict[str, str]] = {
    403: {
        "description": "Reading: a member's token or a virtual key; changing: a billing member too (`role_required`)."
    },
    404: {"description": "`account_id` names no account the caller is in (`account_not_found`)."},
}


async def _account(
    request: Request,
    principal: Caller,
    account_id: Annotated[
        str | None, Query(min_length=1, description="The account (required with the master key; others: their own).")
    ] = None,
) -> tuple[Principal, str]:
    """FastAPI dependency: the caller, and the account whose settings it reads or changes.

    Raises:
        PermissionDenied: a virtual key, or a member who is not an owner, admin or billing member (403
            `role_required`).
        ValidationFailed: the master key without `account_id` (422).
        NotFound: an account the caller is not in, or that does not exist (404).
    """
    if not principal.is_master and principal.role not in _READERS:
        raise PermissionDenied(
            "budget alert settings are for the account's owners, admins and billing members", code="role_required"
        )
    if account_id is None:
        if principal.account_id is None:
            raise invalid("query.account_id", "the master key names the account: ?account_id=")
        account_id = principal.account_id
    if not principal.is_master and account_id != principal.account_id:
        raise NotFound(f"no account with id {account_id!r}", code="account_not_found")
    await services(request).directory.get_account(account_id)
    return principal, account_id


Account = Annotated[tuple[Principal, str], Depends(_account)]


async def _writable(account: Account) -> str:
    """FastAPI dependency: the account whose settings the caller changes, refused to a billing member (403
    `role_required`) before its body is looked at."""
    principal, account_id = account
    if not principal.is_master and principal.role not in _WRITERS:
        raise PermissionDenied(
            "budget alert settings are changed by the account's owners and admins", code="role_required"
        )
    return account_id


def _envelope(data: dict[str, Any]) -> Response:
    """The seed's answer: `{"success": true, "data": ...}`, every `Decimal` an exact JSON number."""
    return Response(dumps_exact({"success": True, "data": data}), media_type="application/json")


@router.get("/alerts", summary="An account's budget alert settings (seed 004)", responses=_RESPONSES)
async def get_budget_alerts(request: Request, account: Account) -> Response:
    """`globalBudgetAlerts`, `virtualKeyBudgetAlerts` and `costSpikesDetection`, as the account's rules stand."""
    _principal, account_id = account
    return _envelope(seed_view(await services(request).alerts.get(account_id)))


@router.put(
    "/alerts",
    summary="Change an account's budget alert settings (seed 004)",
    responses=_RESPONSES
    | {
        422: {
            "description": "A field is unknown or bad (`error.details` names it: an unknown action, a percentage "
            "outside (0, 1], a multiplier not above 1 or over 10000, a window not a whole number of hours from one "
            "hour to a week, a percentage or threshold given twice, `actions` naming no threshold); an action has "
            "nowhere to go (`email` without recipients or SMTP, `slack` without the account's Slack URL, "
            "`pagerduty` without its routing key); the master key without `account_id`."
        }
    },
)
async def put_budget_alerts(
    request: Request, account_id: Annotated[str, Depends(_writable)], settings: BudgetAlertSettings
) -> Response:
    """Replace the parts given (a part left out stays as it is); the next commit that moves spend, and the next
    anomaly scan, use them. Answers the settings as `GET` does."""
    found = services(request)
    config = settings.applied_to(await found.alerts.get(account_id))
    await check_rules(
        config,
        account_id=account_id,
        directory=found.directory,
        smtp_configured=found.smtp_configured,
        allow_private=found.allow_private_webhook_urls,
    )
    saved = await found.alerts.put(account_id, config, at=found.directory.now())
    return _envelope(seed_view(saved))
