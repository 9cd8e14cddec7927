"""`GET /api/admin/requests/{id}`: one usage event as the ledger recorded it.

The id is a proxied request's `x-farebox-request-id` (or an ingested event's id). A member's key sees
only its own account's events: another account's event answers 404, as if it did not exist. A voided
event is shown as recorded, with its void (reason, when, by whom) under `void`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from farebox.api.void_schemas import VoidOut, present_void
from farebox.core.credentials import Principal
from farebox.core.events import format_micro
from farebox.core.money import format_usd
from farebox.errors import NotFound
from farebox.ledger.adjustments import Void
from farebox.ledger.reader import EventRow
from farebox.ledger.reprices import Reprice
from farebox.services import authenticate, services

__all__ = ["RequestOut", "present_event", "router"]

router = APIRouter(prefix="/api/admin", tags=["admin"])


class RepriceOut(BaseModel):
    """A reprice of the event: an adjustment appended, the event unchanged."""

    id: str
    difference_usd: str = Field(description="What its cost moved by, in decimal USD (`0.003`, `-0.001`).")
    unit_prices: dict[str, str] = Field(description="The unit prices it was repriced at.")
    reason: str
    repriced_at: str
    repriced_by: str = Field(description="`master`, `member` (`repriced_by_member_id`) or `cli`.")
    repriced_by_member_id: str | None


class RequestOut(BaseModel):
    """A usage event as recorded. Money as decimal USD strings, seconds and quantity as decimal strings."""

    id: str
    timestamp: str
    account_id: str
    key_id: str | None
    member_id: str | None
    agent_id: str | None
    app: str | None
    tags: list[str]
    axis: str
    provider: str
    model: str
    canonical_model: str
    operation: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    characters: int
    seconds: str
    quantity: str
    cost_usd: str = Field(description="What the event costs: as recorded, plus its reprices (`reprices`).")
    unit_prices: dict[str, str] = Field(description="The unit prices it was recorded at.")
    priced: bool
    status: str
    http_status: int | None
    error_type: str | None
    latency_ms: int | None
    ttft_ms: int | None
    streamed: bool
    estimated: bool
    source: str
    metadata: dict[str, Any]
    void: VoidOut | None = Field(
        description="The event's void, when it was voided: it then counts in no spend figure. The event is as recorded."
    )
    reprices: list[RepriceOut] = Field(
        description="Its cost moved to the price book of a later day (`POST /api/admin/analytics/recalculate-costs`), "
        "oldest first."
    )


def present_event(row: EventRow, *, void: Void | None, reprices: list[Reprice]) -> RequestOut:
    """The API shape of a recorded usage event, its void if it was voided, and its reprices."""
    return RequestOut(
        id=row.id,
        timestamp=row.timestamp.isoformat().replace("+00:00", "Z"),
        account_id=row.account_id,
        key_id=row.key_id,
        member_id=row.member_id,
        agent_id=row.agent_id,
        app=row.app,
        tags=list(row.tags),
        axis=row.axis,
        provider=row.provider,
        model=row.model,
        canonical_model=row.canonical_model,
        operation=row.operation,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cached_input_tokens=row.cached_input_tokens,
        cache_write_tokens=row.cache_write_tokens,
        reasoning_tokens=row.reasoning_tokens,
        characters=row.characters,
        seconds=format_micro(row.seconds_micro),
        quantity=format_micro(row.quantity_micro),
        cost_usd=format_usd(row.cost_nano),
        unit_prices=dict(row.unit_prices),
        priced=row.priced,
        status=row.status,
        http_status=row.http_status,
        error_type=row.error_type,
        latency_ms=row.latency_ms,
        ttft_ms=row.ttft_ms,
        streamed=row.streamed,
        estimated=row.estimated,
        source=row.source,
        metadata=dict(row.metadata),
        void=None if void is None else present_void(void),
        reprices=[
            RepriceOut(
                id=reprice.id,
                difference_usd=format_usd(reprice.difference_nano),
                unit_prices=reprice.unit_prices,
                reason=reprice.reason,
                repriced_at=reprice.created_at.isoformat().replace("+00:00", "Z"),
                repriced_by=reprice.by.kind,
                repriced_by_member_id=reprice.by.member_id,
            )
            for reprice in reprices
        ],
    )


@router.get("/requests/{request_id}", summary="Show one request's usage event")
async def get_request(
    request_id: str, request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> RequestOut:
    found = services(request)
    row = await found.reader.event(request_id)
    missing = NotFound(f"no usage event with id {request_id!r}", code="event_not_found")
    if row is None:
        raise missing
    principal.require_usage(row.account_id, key_id=row.key_id, member_id=row.member_id, missing=missing)
    return present_event(row, void=await found.adjustments.void_of(row.id), reprices=await found.reprices.of(row.id))
