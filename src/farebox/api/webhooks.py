"""Webhook endpoints under /api/admin/webhooks: register, list, change, delete, rotate the secret, and read
each endpoint's delivery log. Same authentication as the rest of the admin API.

Creating an endpoint (and rotating its secret) returns the signing secret once, as `secret`. A URL that is
not http(s), or (unless `allow_private_webhook_urls` is set) reaches a private, loopback or link-local
address, is refused with 422. Bodies: `farebox.api.webhook_schemas`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from farebox.api.admin_schemas import ListOf
from farebox.api.openapi import errors
from farebox.api.webhook_schemas import (
    DeliveryOut,
    SecretOut,
    TestSent,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
    checked_url,
    present_delivery,
    present_endpoint,
)
from farebox.core.credentials import Principal
from farebox.ledger.webhooks import WebhookEndpoint, WebhookEndpoints, unknown_endpoint
from farebox.services import authenticate, services
from farebox.webhooks.signing import new_secret

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/webhooks", tags=["webhooks"])

Caller = Annotated[Principal, Depends(authenticate)]
_URL_REFUSED = errors(
    {
        422: "A field is missing, unknown or bad (`error.details` names each); or `url`'s host does not resolve, or "
        "resolves to a private, loopback or link-local address (unless the `allow_private_webhook_urls` setting)."
    }
)


def _endpoints(request: Request) -> WebhookEndpoints:
    endpoints = services(request).webhooks
    return endpoints


Endpoints = Annotated[WebhookEndpoints, Depends(_endpoints)]


def _allow_private(request: Request) -> bool:
    return services(request).allow_private_webhook_urls


async def _endpoint_for(
    endpoints: WebhookEndpoints, principal: Principal, endpoint_id: str, *, manage: bool = True
) -> WebhookEndpoint:
    """The endpoint, if the caller may change it (or, without `manage`, read it)."""
    endpoint = await endpoints.get(endpoint_id)
    if manage:
        principal.require_manage(endpoint.account_id, missing=unknown_endpoint(endpoint_id))
    else:
        principal.require_read(endpoint.account_id, missing=unknown_endpoint(endpoint_id))
    return endpoint


@router.post(
    "",
    status_code=201,
    summary="Register a webhook endpoint",
    responses=errors({404: "No account with this `account_id` (`account_not_found`)."}) | _URL_REFUSED,
)
async def create_webhook(body: WebhookIn, request: Request, principal: Caller, endpoints: Endpoints) -> WebhookCreated:
    """Register an endpoint for the events it names. The response holds the signing secret, once."""
    principal.require_manage(body.account_id)
    secret = new_secret()
    endpoint = await endpoints.create(
        body.account_id,
        url=await checked_url(body.url, allow_private=_allow_private(request)),
        events=body.events,
        secret=secret,
        description=body.description,
        batch_size=body.batch_size,
        flush_interval_ms=round(body.flush_interval_seconds * 1000),
    )
    return WebhookCreated(**present_endpoint(endpoint).model_dump(), secret=secret)


@router.get("", summary="List webhook endpoints")
async def list_webhooks(
    principal: Caller,
    endpoints: Endpoints,
    account_id: Annotated[str | None, Query(description="Of this account only; a member's own by default.")] = None,
) -> ListOf[WebhookOut]:
    """Endpoints, oldest first: every account's for the master key, unless it names one."""
    account_id = account_id or principal.account_id
    if account_id is not None:
        principal.require_read(account_id)
    return ListOf(
        data=[present_endpoint(endpoint) for endpoint in await endpoints.list_endpoints(account_id=account_id)]
    )


@router.get("/{endpoint_id}", summary="Show a webhook endpoint")
async def get_webhook(endpoint_id: str, principal: Caller, endpoints: Endpoints) -> WebhookOut:
    return present_endpoint(await _endpoint_for(endpoints, principal, endpoint_id, manage=False))


@router.patch("/{endpoint_id}", summary="Change a webhook endpoint", responses=_URL_REFUSED)
async def update_webhook(
    endpoint_id: str, body: WebhookPatch, request: Request, principal: Caller, endpoints: Endpoints
) -> WebhookOut:
    """Change the given fields; `enabled: false` pauses deliveries (pending ones fail rather than wait)."""
    await _endpoint_for(endpoints, principal, endpoint_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "url" in changes:
        changes["url"] = await checked_url(changes["url"], allow_private=_allow_private(request))
    if "flush_interval_seconds" in changes:
        changes["flush_interval_ms"] = round(changes.pop("flush_interval_seconds") * 1000)
    return present_endpoint(await endpoints.update(endpoint_id, **changes))


@router.delete("/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint")
async def delete_webhook(endpoint_id: str, principal: Caller, endpoints: Endpoints) -> Response:
    await _endpoint_for(endpoints, principal, endpoint_id)
    await endpoints.delete(endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", summary="Replace a webhook endpoint's signing secret")
async def rotate_secret(endpoint_id: str, principal: Caller, endpoints: Endpoints) -> SecretOut:
    """A new signing secret, returned once; every later attempt (retries too) is signed with it."""
    await _endpoint_for(endpoints, principal, endpoint_id)
    secret = new_secret()
    await endpoints.update(endpoint_id, secret=secret)
    return SecretOut(secret=secret)


@router.get("/{endpoint_id}/deliveries", summary="The delivery log of a webhook endpoint")
async def deliveries(
    endpoint_id: str,
    principal: Caller,
    endpoints: Endpoints,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> ListOf[DeliveryOut]:
    """Messages to this endpoint, newest first, each with every attempt made."""
    await _endpoint_for(endpoints, principal, endpoint_id, manage=False)
    found = await endpoints.deliveries(endpoint_id, limit=limit, status=status)
    return ListOf(data=[present_delivery(delivery) for delivery in found])


@router.post(
    "/{endpoint_id}/deliveries/{message_id}/retry",
    status_code=202,
    summary="Send a failed delivery once more",
    responses=errors({409: "The message is pending or delivered, not failed (`delivery_not_failed`)."}),
)
async def retry_delivery(endpoint_id: str, message_id: str, principal: Caller, endpoints: Endpoints) -> Response:
    """Make a failed message due again at once, for one more attempt under its same `webhook-id`."""
    await _endpoint_for(endpoints, principal, endpoint_id)
    await endpoints.retry(endpoint_id, message_id)
    return Response(status_code=202)


@router.post("/{endpoint_id}/test", status_code=202, summary="Send a test delivery to a webhook endpoint")
async def send_test(endpoint_id: str, principal: Caller, endpoints: Endpoints) -> TestSent:
    """Queue a signed `webhook.test` message, whatever events the endpoint asked for."""
    await _endpoint_for(endpoints, principal, endpoint_id)
    return TestSent(id=await endpoints.send_test(endpoint_id))
