"""How the mock provider behaves: its configuration and the per-request plan it derives from it.

Every answer follows a `MockPlan`, decided once per request from the mock's `MockConfig`, the request's
`x-mock-*` headers and a magic model suffix:

| control                          | effect                                                              |
| -------------------------------- | ------------------------------------------------------------------- |
| `x-mock-status: 429` / `gpt-4o@429` | answer that status with the provider's own error body            |
| `x-mock-drop-after: 3` / `gpt-4o@drop3` | end a stream after 3 content chunks, with no final usage      |
| `x-mock-drop-mode: abort`        | end a dropped stream by aborting the connection instead of a clean end |
| `x-mock-output-tokens: 50`       | generate 50 output tokens                                            |
| `x-mock-cached-tokens: 1024`     | report that many input tokens as read from the prompt cache         |
| `x-mock-cache-write-tokens: 512` | report that many input tokens as written to the cache (Anthropic)   |
| `x-mock-reasoning-tokens: 64`    | report that many extra output tokens as reasoning (within the limit) |
| `x-mock-latency-ms: 200`         | wait that long before the first byte                                |

The random error rate draws from the `random.Random` the mock was created with, so a seeded mock
fails the same requests every run.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["WORDS", "MockConfig", "MockPlan", "generated_words", "new_id", "now", "plan_request", "split_model"]

WORDS = tuple(
    (
        "quick brown fox jumps over the lazy dog and then runs far away from home to find some fresh water"
        " near the old river bank under a bright blue sky while birds sing"
    ).split()
)
"""Words that are one o200k_base token each with a leading space, so `n` words are exactly `n` tokens."""

_FIRST_WORD = "The"


@dataclass(frozen=True, slots=True)
class MockConfig:
    """Settings of one mock provider instance."""

    latency_ms: float = 0
    """Delay before the first byte of every answer."""
    chunk_delay_ms: float = 0
    """Delay between stream chunks."""
    output_tokens: int | None = None
    """Output tokens per answer; by default `min(max_tokens, 20)`, or 20 without a limit."""
    error_rate: float = 0.0
    """Probability of answering a provider-shaped 429 or 500 instead."""

    def __post_init__(self) -> None:
        """Refuse settings the mock cannot honour.

        Raises:
            ValueError: a negative delay or token count, or an error rate outside [0, 1].
        """
        if self.latency_ms < 0 or self.chunk_delay_ms < 0:
            raise ValueError("mock delays cannot be negative")
        if self.output_tokens is not None and self.output_tokens < 0:
            raise ValueError("mock output_tokens cannot be negative")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("mock error_rate must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class MockPlan:
    """What the mock does for one request."""

    model: str
    """The model name to echo back, without any magic suffix."""
    status: int | None
    """A forced error status, or None to answer normally."""
    output_tokens: int
    """Visible output tokens to generate (reasoning tokens come on top; together within the limit)."""
    finish_length: bool
    """Whether generation stopped at the request's token limit."""
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    drop_after: int | None
    """End a stream after this many content chunks, without the final usage."""
    abort: bool
    """Abort the connection when dropping, instead of ending the body cleanly."""
    latency_s: float
    chunk_delay_s: float


def split_model(model: str) -> tuple[str, str | None]:
    """`("gpt-4o", "429")` for `"gpt-4o@429"`: the model name and its magic suffix, if any."""
    name, at, suffix = model.rpartition("@")
    return (name, suffix) if at and name else (model, None)


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 0 else None


def plan_request(
    config: MockConfig,
    rng: random.Random,
    *,
    headers: Mapping[str, str],
    model: str,
    max_tokens: int | None,
    ceiling: int | None = None,
) -> MockPlan:
    """Decide how to answer one request.

    The output, reasoning included, stays within the request's limit, or within `ceiling` when it set none,
    whatever the headers ask for: as a provider's, the answer to one request is bounded.

    Args:
        config: the mock's settings.
        rng: the mock's random source, for the error rate.
        headers: the request headers (lower-case names, as Starlette gives them).
        model: the requested model, possibly with a magic `@status` or `@dropN` suffix.
        max_tokens: the request's output token limit, if it set one.
        ceiling: the model's largest output, which bounds an answer whose request set no limit.
    """
    name, suffix = split_model(model)
    status = _header_int(headers, "x-mock-status")
    drop_after = _header_int(headers, "x-mock-drop-after")
    if suffix is not None and suffix.isdigit():
        status = int(suffix)
    elif suffix is not None and suffix.startswith("drop") and suffix[4:].isdigit():
        drop_after = int(suffix[4:])
    if status is None and config.error_rate > 0 and rng.random() < config.error_rate:
        status = rng.choice((429, 500))
    wanted = _header_int(headers, "x-mock-output-tokens")
    if wanted is None:
        wanted = config.output_tokens
    if wanted is None:
        wanted = 20 if max_tokens is None else min(max_tokens, 20)
    reasoning = _header_int(headers, "x-mock-reasoning-tokens") or 0
    limit = max_tokens if max_tokens is not None else ceiling
    if limit is not None:
        # Reasoning counts toward the limit, as with every provider: it is spent first.
        reasoning = min(reasoning, limit)
    finish_length = limit is not None and wanted + reasoning >= limit
    latency = _header_int(headers, "x-mock-latency-ms")
    return MockPlan(
        model=name,
        status=status,
        output_tokens=min(wanted, limit - reasoning) if limit is not None else wanted,
        finish_length=finish_length,
        cached_tokens=_header_int(headers, "x-mock-cached-tokens") or 0,
        cache_write_tokens=_header_int(headers, "x-mock-cache-write-tokens") or 0,
        reasoning_tokens=reasoning,
        drop_after=drop_after,
        abort=headers.get("x-mock-drop-mode") == "abort",
        latency_s=(config.latency_ms if latency is None else latency) / 1000,
        chunk_delay_s=config.chunk_delay_ms / 1000,
    )


def generated_words(count: int) -> list[str]:
    """`count` words whose concatenation is exactly `count` o200k_base tokens ("The quick brown ...")."""
    return [_FIRST_WORD if i == 0 else " " + WORDS[(i - 1) % len(WORDS)] for i in range(count)]


def new_id(prefix: str) -> str:
    """A provider-style object id, such as `chatcmpl-...` or `msg_...` (not drawn from the seeded source)."""
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def now() -> int:
    """The Unix time in seconds, for `created` fields."""
    return int(time.time())
