"""Metering use cases: price what one request used and record it, before its response is finished.

The gateway decides *what* happened (usage, status, timings, whether counts were estimated); this module
turns it into a `UsageEvent`, priced by the `PriceBook`, and commits it through the ledger's group-commit
writer. `Meter.record` returns only once the event is durable, so the gateway releases the last bytes
of a response after it (DESIGN.md "Durable before done").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from farebox.core.events import Axis, Status, UsageEvent
from farebox.core.pricing import Usage
from farebox.ledger.base import Ledger
from farebox.prices import PriceBook

__all__ = ["Attribution", "Meter", "Outcome", "PriceTarget"]


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who a request's usage belongs to: the key's account and member, and its agent, app and tags."""

    account_id: str
    key_id: str | None
    member_id: str | None
    agent_id: str | None = None
    app: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Free-form request metadata (the `x-farebox-metadata` header), stored with the event."""


@dataclass(frozen=True, slots=True)
class PriceTarget:
    """What the price book prices a request as."""

    provider: str | None
    """The catalog provider (`openai`, `anthropic`, `google`), or None to let the model name decide."""
    model: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one forwarded request did."""

    provider: str
    """Where the request went (the route's provider, e.g. `mock`)."""
    model: str
    """The model the client asked for."""
    price_as: PriceTarget
    operation: str
    axis: Axis
    usage: Usage
    estimated: bool = False
    """True when farebox counted the tokens itself because the provider reported none (or not all)."""
    status: Status = Status.OK
    http_status: int | None = None
    error_type: str | None = None
    latency_ms: int | None = None
    ttft_ms: int | None = None
    streamed: bool = False


class Meter:
    """Prices and records usage events. Safe to share between concurrent requests."""

    def __init__(self, ledger: Ledger, prices: PriceBook) -> None:
        self._ledger = ledger
        self._prices = prices

    def build(self, event_id: str, *, at: datetime, attribution: Attribution, outcome: Outcome) -> UsageEvent:
        """The priced event of one request (an unknown model is recorded at cost 0, unpriced)."""
        usage = outcome.usage
        priced = self._prices.price(
            provider=outcome.price_as.provider,
            model=outcome.price_as.model,
            operation=outcome.operation,
            usage=usage,
            at=at,
        )
        return UsageEvent(
            id=event_id,
            timestamp=at,
            account_id=attribution.account_id,
            axis=outcome.axis,
            provider=outcome.provider,
            model=outcome.model,
            canonical_model=priced.canonical_model,
            operation=outcome.operation,
            cost_nano=priced.cost_nano,
            key_id=attribution.key_id,
            member_id=attribution.member_id,
            agent_id=attribution.agent_id,
            app=attribution.app,
            tags=attribution.tags,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            characters=usage.characters,
            seconds=usage.seconds,
            quantity=usage.quantity,
            unit_prices=priced.unit_prices,
            priced=priced.priced,
            status=outcome.status,
            http_status=outcome.http_status,
            error_type=outcome.error_type,
            latency_ms=outcome.latency_ms,
            ttft_ms=outcome.ttft_ms,
            streamed=outcome.streamed,
            estimated=outcome.estimated,
            metadata=dict(attribution.metadata),
        )

    def cost_nano(self, price_as: PriceTarget, *, operation: str, usage: Usage, at: datetime) -> int:
        """What `usage` costs (0 for a model no price is known for)."""
        return self._prices.price(
            provider=price_as.provider, model=price_as.model, operation=operation, usage=usage, at=at
        ).cost_nano

    async def record(self, event_id: str, *, at: datetime, attribution: Attribution, outcome: Outcome) -> UsageEvent:
        """Price the request and commit its event; returns once the event is durable.

        Recording the same `event_id` twice counts it once (the ledger is idempotent on ids).
        """
        event = self.build(event_id, at=at, attribution=attribution, outcome=outcome)
        await self._ledger.record(event)
        return event
