"""The one factory of usage events: every field of an event comes from where it should."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from farebox.core.events import Axis, Status, UsageEvent
from farebox.core.pricing import Usage
from farebox.metering import Attribution, Outcome, PriceTarget, UsageEvents
from farebox.prices import PriceBook

AT = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
METADATA = {"ticket": "T-1"}


def build(prices: PriceBook, **changes: object) -> UsageEvent:
    attribution = Attribution("acct-1", "key-1", "mem-1", agent_id="agent-7", app="helpdesk", tags=("prod", "eu"))
    usage = Usage(
        input_tokens=1000,
        output_tokens=200,
        cached_input_tokens=300,
        cache_write_tokens=100,
        reasoning_tokens=50,
        characters=7,
        seconds=Decimal("1.5"),
        quantity=Decimal("2"),
    )
    outcome = Outcome(
        "mock",
        "gpt-4o-2024-08-06",
        PriceTarget("openai", "gpt-4o"),
        "chat.completions",
        Axis.LLM,
        usage,
        estimated=True,
        status=Status.ERROR,
        http_status=502,
        error_type="upstream_reset",
        latency_ms=812,
        ttft_ms=95,
        streamed=True,
        prompt_prefix="0123456789abcdef",
    )
    fields: dict[str, object] = {"attribution": dataclasses.replace(attribution, metadata=METADATA), "outcome": outcome}
    fields.update(changes)
    return UsageEvents(prices).build("evt-1", at=AT, source="ingest", **fields)  # type: ignore[arg-type]


def test_every_field_of_a_built_event_comes_from_its_source(prices: PriceBook) -> None:
    event = build(prices)
    expected_cost = UsageEvents(prices).cost_nano(
        PriceTarget("openai", "gpt-4o"), operation="chat.completions", usage=event_usage(event), at=AT
    )
    assert dataclasses.asdict(event) == {
        "id": "evt-1",
        "timestamp": AT,
        "account_id": "acct-1",
        "axis": Axis.LLM,
        "provider": "mock",
        "model": "gpt-4o-2024-08-06",
        "canonical_model": "gpt-4o",
        "operation": "chat.completions",
        "cost_nano": expected_cost,
        "key_id": "key-1",
        "member_id": "mem-1",
        "agent_id": "agent-7",
        "app": "helpdesk",
        "tags": ("prod", "eu"),
        "input_tokens": 1000,
        "output_tokens": 200,
        "cached_input_tokens": 300,
        "cache_write_tokens": 100,
        "reasoning_tokens": 50,
        "characters": 7,
        "seconds": Decimal("1.5"),
        "quantity": Decimal("2"),
        "unit_prices": event.unit_prices,
        "priced": True,
        "status": Status.ERROR,
        "http_status": 502,
        "error_type": "upstream_reset",
        "latency_ms": 812,
        "ttft_ms": 95,
        "streamed": True,
        "estimated": True,
        "source": "ingest",
        "metadata": METADATA,
        "prompt_prefix": "0123456789abcdef",
    }
    assert expected_cost > 0 and event.unit_prices["input_mtok"] == "2.5"


def event_usage(event: UsageEvent) -> Usage:
    return Usage(
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        cached_input_tokens=event.cached_input_tokens,
        cache_write_tokens=event.cache_write_tokens,
        reasoning_tokens=event.reasoning_tokens,
        characters=event.characters,
        seconds=event.seconds,
        quantity=event.quantity,
    )


def test_a_given_cost_is_recorded_as_given_and_an_unknown_model_at_zero_unpriced(prices: PriceBook) -> None:
    given = build(prices, cost_nano=1_234_567_891)
    assert (given.cost_nano, given.unit_prices, given.priced) == (1_234_567_891, {"cost_usd": "1.234567891"}, True)
    unknown = Outcome(None, "no-such-model", PriceTarget(None, "no-such-model"), "chat.completions", Axis.LLM, Usage())
    event = build(prices, outcome=unknown)
    assert (event.cost_nano, event.priced, event.unit_prices) == (0, False, {})
    assert event.provider == event.provider.strip()  # the catalog's guess, never None


def test_events_of_one_attribution_share_its_metadata_unchanged(prices: PriceBook) -> None:
    first, second = build(prices), build(prices)
    assert first.metadata is second.metadata is METADATA
    assert METADATA == {"ticket": "T-1"}
