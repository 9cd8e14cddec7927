"""`PUT /api/admin/analytics/webhooks` and `GET` (seed 004): an account's analytics webhooks in the seed's shape,
mapped onto farebox's webhook endpoints (`farebox.ledger.webhooks`).

Each endpoint of the settings is a webhook endpoint marked as the settings' (`managed_by` `analytics`), matched by
URL: a PUT changes the ones it names again, creates the new ones (answering each new signing secret once) and
deletes the ones it no longer names; endpoints of the webhook API are left alone. `authentication` adds a bearer
token to every delivery, besides the Standard Webhooks signature; `retryPolicy` gives the endpoint its own retries
(`maxRetries` after the first attempt, the first `retryDelay` ms after it, doubling, at most an hour);
`batchSettings` sets how many `usage.recorded` events one message holds and how long they wait (disabled: one
event a message, at once). `enabled: false` pauses them all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic.alias_generators import to_camel

from farebox.api.openapi import errors
from farebox.api.webhook_schemas import BatchSize, EventTypes, FlushSeconds, Url, checked_url
from farebox.core.credentials import Principal
from farebox.core.json_types import JSON_INTEGER
from farebox.errors import ValidationFailed
from farebox.ledger.webhooks import WebhookEndpoint
from farebox.services import authenticate, services
from farebox.webhooks.signing import new_secret

__all__ = ["MANAGED", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"])

MANAGED = "analytics"
_MAX_ENDPOINTS = 20


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)


class Authentication(_Camel):
    type: Literal["bearer"]
    token: str = Field(min_length=1, max_length=4096, description="Sent as `Authorization: Bearer <token>`.")


class RetryPolicy(_Camel):
    max_retries: Annotated[int, Field(ge=0, le=20), JSON_INTEGER] = 3
    retry_delay: Annotated[int, Field(ge=100, le=3_600_000, description="Milliseconds."), JSON_INTEGER] = 5_000


class AnalyticsEndpoint(_Camel):
    url: Url
    events: EventTypes
    authentication: Authentication | None = None
    retry_policy: RetryPolicy | None = None


class BatchSettings(_Camel):
    enabled: StrictBool = True
    batch_size: BatchSize = 100
    flush_interval: FlushSeconds = Field(5.0, description="Seconds a `usage.recorded` event waits for its batch.")


class AnalyticsWebhooksIn(_Camel):
    enabled: StrictBool = True
    endpoints: list[AnalyticsEndpoint] = Field(max_length=_MAX_ENDPOINTS)
    batch_settings: BatchSettings = Field(default_factory=BatchSettings)

    @field_validator("endpoints")
    @classmethod
    def _distinct_urls(cls, endpoints: list[AnalyticsEndpoint]) -> list[AnalyticsEndpoint]:
        urls = [endpoint.url for endpoint in endpoints]
        if len(set(urls)) != len(urls):
            raise ValueError("each endpoint's url appears once")
        return endpoints


def _account(principal: Principal, account_id: str | None) -> str:
    account = account_id or principal.account_id
    if account is None:
        raise ValidationFailed(
            "account_id: the master key names the account",
            details=[{"loc": "account_id", "message": "the master key names the account"}],
        )
    return account


Account = Annotated[str | None, Query(min_length=1, description="The account (the master key; others: their own).")]


def _shown(endpoint: WebhookEndpoint) -> dict[str, Any]:
    retry = None
    if endpoint.max_retries is not None:
        retry = {"maxRetries": endpoint.max_retries, "retryDelay": endpoint.retry_delay_ms}
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "enabled": endpoint.enabled,
        "authentication": {"type": "bearer"} if endpoint.has_bearer else None,
        "retryPolicy": retry,
    }


def _settings(managed: list[WebhookEndpoint], secrets: dict[str, str]) -> dict[str, Any]:
    first = managed[0] if managed else None
    batched = first is None or first.batch_size > 1 or first.flush_interval_ms > 0
    return {
        "success": True,
        "data": {
            "enabled": any(endpoint.enabled for endpoint in managed) if managed else True,
            "endpoints": [
                _shown(endpoint) | ({"signingSecret": secrets[endpoint.id]} if endpoint.id in secrets else {})
                for endpoint in managed
            ],
            "batchSettings": {
                "enabled": batched,
                "batchSize": 100 if first is None else first.batch_size,
                "flushInterval": 5.0 if first is None else first.flush_interval_ms / 1000,
            },
        },
    }


@router.get("/webhooks", summary="The account's analytics webhooks (never a token or a secret)")
async def get_analytics_webhooks(
    request: Request, principal: Annotated[Principal, Depends(authenticate)], account_id: Account = None
) -> dict[str, Any]:
    account = _account(principal, account_id)
    principal.require_read(account)
    endpoints = await services(request).webhooks.list_endpoints(account_id=account)
    return _settings([endpoint for endpoint in endpoints if endpoint.managed_by == MANAGED], {})


@router.put(
    "/webhooks",
    summary="Set the account's analytics webhooks: endpoints, their events, bearer tokens, retries and batching",
    responses=errors(
        {
            404: "No account with this `account_id` (`account_not_found`).",
            422: "A field is missing, unknown or bad (`error.details` names it); a URL twice; a URL that does not "
            "resolve, or resolves to a private address (unless `allow_private_webhook_urls`).",
        }
    ),
)
async def put_analytics_webhooks(
    request: Request,
    body: AnalyticsWebhooksIn,
    principal: Annotated[Principal, Depends(authenticate)],
    account_id: Account = None,
) -> dict[str, Any]:
    """Make the account's analytics webhooks these: each new endpoint's signing secret is answered once."""
    account = _account(principal, account_id)
    principal.require_manage(account)
    found = services(request)
    endpoints = found.webhooks
    batch = body.batch_settings
    batch_size, flush_ms = (batch.batch_size, round(batch.flush_interval * 1000)) if batch.enabled else (1, 0)
    urls = [await checked_url(given.url, allow_private=found.allow_private_webhook_urls) for given in body.endpoints]
    existing = {
        endpoint.url: endpoint
        for endpoint in await endpoints.list_endpoints(account_id=account)
        if endpoint.managed_by == MANAGED
    }
    secrets: dict[str, str] = {}
    kept: list[WebhookEndpoint] = []
    for given, url in zip(body.endpoints, urls, strict=True):
        retry = given.retry_policy
        fields: dict[str, Any] = {
            "events": given.events,
            "batch_size": batch_size,
            "flush_interval_ms": flush_ms,
            "bearer_token": None if given.authentication is None else given.authentication.token,
            "max_retries": None if retry is None else retry.max_retries,
            "retry_delay_ms": None if retry is None else retry.retry_delay,
        }
        if url in existing:
            kept.append(await endpoints.update(existing.pop(url).id, enabled=body.enabled, **fields))
            continue
        secret = new_secret()
        created = await endpoints.create(
            account, url=url, secret=secret, description="analytics webhooks", managed_by=MANAGED, **fields
        )
        if not body.enabled:
            created = await endpoints.update(created.id, enabled=False)
        secrets[created.id] = secret
        kept.append(created)
    for gone in existing.values():
        await endpoints.delete(gone.id)
    return _settings(kept, secrets)
