"""The usage event: one priced, attributed unit of usage, as the ledger records it.

Counts follow OpenAI semantics: `input_tokens` is the total input including cached-read and
cache-write tokens; `output_tokens` includes reasoning tokens. `seconds` and `quantity` are exact
decimals with at most six places (stored as integer millionths).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

__all__ = ["MICRO", "Axis", "RecordResult", "Status", "UsageEvent", "epoch_us", "format_micro", "from_epoch_us"]

MICRO = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Axis(StrEnum):
    LLM = "llm"
    VOICE = "voice"
    COMPUTE = "compute"


class Status(StrEnum):
    OK = "ok"
    ERROR = "error"


class RecordResult(StrEnum):
    """What `Ledger.record` did with an event."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"


def epoch_us(at: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * MICRO + delta.microseconds


def format_micro(value: int) -> str:
    """Millionths (seconds, quantity) as an exact decimal string, no trailing zeros: 3_600_500_000 -> `3600.5`."""
    whole, fraction = divmod(abs(value), MICRO)
    text = f"{whole}.{fraction:06d}".rstrip("0").rstrip(".") if fraction else str(whole)
    return f"-{text}" if value < 0 else text


def from_epoch_us(us: int) -> datetime:
    """The aware UTC datetime of epoch microseconds."""
    seconds, micros = divmod(us, MICRO)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micros)


@dataclass(slots=True)
class UsageEvent:
    """One usage event. `id` is the idempotency key: the ledger counts an id once.

    Never changed once built. It is not a frozen dataclass because a frozen one's `__init__` sets
    each of the 34 fields through `object.__setattr__`: 2 of the 3 µs it took to build one, paid
    for every event ingested or proxied.
    """

    id: str
    timestamp: datetime
    account_id: str
    axis: Axis
    provider: str
    model: str
    canonical_model: str
    operation: str
    cost_nano: int
    key_id: str | None = None
    member_id: str | None = None
    agent_id: str | None = None
    app: str | None = None
    tags: tuple[str, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    characters: int = 0
    seconds: Decimal = Decimal(0)
    quantity: Decimal = Decimal(0)
    unit_prices: dict[str, str] = field(default_factory=dict)
    """The unit prices (decimal USD strings) this event was charged at."""
    priced: bool = True
    """False when no price was known for the model: recorded at cost 0 and counted as unpriced."""
    status: Status = Status.OK
    http_status: int | None = None
    error_type: str | None = None
    latency_ms: int | None = None
    ttft_ms: int | None = None
    streamed: bool = False
    estimated: bool = False
    """True when token counts were estimated by farebox because the provider reported none."""
    source: str = "proxy"
    metadata: dict[str, Any] = field(default_factory=dict)
    prompt_prefix: str | None = None
    """A keyed hash of the beginning of a long prompt (16 hex digits; `farebox.gateway.prompt_prefix`), never the
    prompt itself: requests that repeat a prompt's beginning share it. None for a short or no prompt."""
