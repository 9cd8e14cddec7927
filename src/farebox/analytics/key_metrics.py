"""The figures seed 004 shows of a virtual key's usage, the body of a comparison of keys, and how keys rank.

A key's summary and a comparison compute each rate the same way here: average latency in seconds to the
millisecond, error rate to four places, cost per request and per token to the nano-USD, half to even, null
when there is nothing to divide by. A comparison ranks the keys on each metric from the highest value down.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from farebox.analytics.admin_common import NANO, PERIOD_PATTERN, ratio, usd
from farebox.analytics.views import Totals

__all__ = [
    "MAX_COMPARED",
    "CompareIn",
    "Figure",
    "KeyMetric",
    "Standing",
    "average_latency",
    "cost_per_request",
    "cost_per_token",
    "error_rate",
    "standings",
]

T = TypeVar("T")
Figure = Decimal | int | None
"""A metric's value: a count, an exact decimal, or null when it has nothing to divide by."""
SECONDS = Decimal("0.001")
"""Latency in seconds, to the millisecond the ledger records."""
MAX_COMPARED = 20


def average_latency(totals: Totals) -> Decimal | None:
    """Seconds per request: the requests' latencies summed over their number."""
    return ratio(totals.latency_ms, totals.requests * 1000, SECONDS)


def error_rate(totals: Totals) -> Decimal | None:
    """Failed requests over requests."""
    return ratio(totals.errors, totals.requests)


def cost_per_request(totals: Totals) -> Decimal | None:
    return ratio(usd(totals.cost_nano), totals.requests, NANO)


def cost_per_token(totals: Totals) -> Decimal | None:
    return ratio(usd(totals.cost_nano), totals.tokens, NANO)


class KeyMetric(StrEnum):
    """What keys can be compared on."""

    REQUESTS = "requests"
    SUCCESSFUL_REQUESTS = "successfulRequests"
    FAILED_REQUESTS = "failedRequests"
    TOKENS = "tokens"
    INPUT_TOKENS = "inputTokens"
    OUTPUT_TOKENS = "outputTokens"
    COST = "cost"
    LATENCY = "latency"
    ERROR_RATE = "errorRate"
    COST_PER_REQUEST = "costPerRequest"
    COST_PER_TOKEN = "costPerToken"

    @property
    def additive(self) -> bool:
        """Whether the keys' values add up to a total (counts and cost), so that each key has a share of it."""
        return self not in _RATES

    def of(self, totals: Totals) -> Figure:
        """The metric's value for some usage."""
        return _FIGURES[self](totals)


_RATES = frozenset({KeyMetric.LATENCY, KeyMetric.ERROR_RATE, KeyMetric.COST_PER_REQUEST, KeyMetric.COST_PER_TOKEN})
_FIGURES: dict[KeyMetric, Callable[[Totals], Figure]] = {
    KeyMetric.REQUESTS: lambda t: t.requests,
    KeyMetric.SUCCESSFUL_REQUESTS: lambda t: t.requests - t.errors,
    KeyMetric.FAILED_REQUESTS: lambda t: t.errors,
    KeyMetric.TOKENS: lambda t: t.tokens,
    KeyMetric.INPUT_TOKENS: lambda t: t.input_tokens,
    KeyMetric.OUTPUT_TOKENS: lambda t: t.output_tokens,
    KeyMetric.COST: lambda t: usd(t.cost_nano),
    KeyMetric.LATENCY: average_latency,
    KeyMetric.ERROR_RATE: error_rate,
    KeyMetric.COST_PER_REQUEST: cost_per_request,
    KeyMetric.COST_PER_TOKEN: cost_per_token,
}


def _distinct(values: list[T]) -> list[T]:
    repeated = [repr(str(value)) for value, count in Counter(values).items() if count > 1]
    if repeated:
        raise ValueError(f"each may be given once: {', '.join(repeated)} given more than once")
    return values


KeyId = Annotated[str, Field(min_length=1, max_length=256)]


class CompareIn(BaseModel):
    """`POST /api/admin/virtual-keys/compare`: which keys, over which period, on which metrics."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    key_ids: Annotated[
        list[KeyId],
        Field(
            min_length=2,
            max_length=MAX_COMPARED,
            json_schema_extra={"uniqueItems": True},
            description="2 to 20 distinct virtual key ids.",
        ),
        AfterValidator(_distinct),
    ]
    period: Annotated[
        str, Field(pattern=PERIOD_PATTERN, description="The last `24h`, `7d`, `4w`...: hours, days or weeks.")
    ] = "7d"
    metrics: Annotated[
        list[KeyMetric],
        Field(
            default_factory=lambda: list(KeyMetric),
            min_length=1,
            json_schema_extra={"uniqueItems": True},
            description="What to compare the keys on (default: every metric).",
        ),
        AfterValidator(_distinct),
    ]


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one key stands on one metric among the keys compared."""

    value: Figure
    share: Decimal | None
    """Of the keys' total, for an additive metric with a total other than zero; else None."""
    rank: int | None
    """1 for the highest value; equal values share a rank (1, 1, 3); None without a value."""


def standings(metric: KeyMetric, usage: Sequence[Totals]) -> tuple[Figure, list[Standing]]:
    """The metric over all the keys together (a total, or for a rate the rate of their usage combined), and
    each key's standing, in the order of `usage`."""
    total = metric.of(Totals.sum(usage))
    values = [metric.of(totals) for totals in usage]
    ranked = [value for value in values if value is not None]
    return total, [
        Standing(
            value,
            ratio(value, total) if metric.additive and value is not None and total is not None else None,
            None if value is None else 1 + sum(other > value for other in ranked),
        )
        for value in values
    ]
