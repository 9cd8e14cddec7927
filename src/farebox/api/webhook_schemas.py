"""Bodies of the webhook API, how endpoints and deliveries are presented, and the check of a notification URL.

`checked_url` (from `farebox.webhooks.guard`) refuses (422) a URL farebox may not call; the Slack URL of the alert
rules goes through it too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StrictFloat, field_validator

from farebox.core.alerts import DESTINATION_URL_PATTERN
from farebox.core.json_types import JSON_INTEGER
from farebox.ledger.webhooks import Delivery, EventType, WebhookEndpoint
from farebox.webhooks.guard import checked_url

__all__ = [
    "DeliveryOut",
    "SecretOut",
    "TestSent",
    "WebhookCreated",
    "WebhookIn",
    "WebhookOut",
    "WebhookPatch",
    "checked_url",
    "present_delivery",
    "present_endpoint",
]

Url = Annotated[str, Field(min_length=1, max_length=2000, json_schema_extra={"pattern": DESTINATION_URL_PATTERN})]
"""A notification URL (`checked_url` checks it)."""
EventTypes = Annotated[list[EventType], Field(min_length=1)]
BatchSize = Annotated[
    int, Field(ge=1, le=1000, description="Most `usage.recorded` events in one message."), JSON_INTEGER
]
FlushSeconds = Annotated[
    StrictFloat, Field(ge=0.05, le=3600, description="Longest a `usage.recorded` event waits for its batch to fill.")
]


class _Events(BaseModel):
    @field_validator("events", check_fields=False)
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(value))


class WebhookIn(_Events, extra="forbid"):
    account_id: str
    url: Url
    events: EventTypes
    description: str = Field("", max_length=500)
    batch_size: BatchSize = 100
    flush_interval_seconds: FlushSeconds = 5.0


class WebhookPatch(_Events, extra="forbid"):
    url: Url | None = None
    events: EventTypes | None = None
    description: str | None = Field(None, max_length=500)
    enabled: StrictBool | None = None
    batch_size: BatchSize | None = None
    flush_interval_seconds: FlushSeconds | None = None


class WebhookOut(BaseModel):
    id: str
    account_id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    batch_size: int
    flush_interval_seconds: float
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret (`whsec_...`). Shown in this response only.")


class SecretOut(BaseModel):
    secret: str = Field(description="The new signing secret, shown once; the old one stops signing at once.")


class DeliveryOut(BaseModel):
    id: str = Field(description="The `webhook-id` every attempt of this message carried.")
    event_type: str
    status: str = Field(description="`pending`, `delivered` or `failed`.")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    body: str = Field(description="The exact JSON body that was signed and sent.")
    log: list[dict[str, object]] = Field(description="Every attempt: number, time, status code, error, duration.")


class TestSent(BaseModel):
    id: str = Field(description="The test message's `webhook-id`; its outcome is in the delivery log.")


def present_endpoint(endpoint: WebhookEndpoint) -> WebhookOut:
    """The API shape of an endpoint (never its secret)."""
    return WebhookOut(
        id=endpoint.id,
        account_id=endpoint.account_id,
        url=endpoint.url,
        description=endpoint.description,
        events=list(endpoint.events),
        enabled=endpoint.enabled,
        batch_size=endpoint.batch_size,
        flush_interval_seconds=endpoint.flush_interval_ms / 1000,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def present_delivery(delivery: Delivery) -> DeliveryOut:
    """The API shape of a delivery and its attempts."""
    fields = {name: getattr(delivery, name) for name in DeliveryOut.model_fields}
    return DeliveryOut(**fields | {"log": list(delivery.log)})
