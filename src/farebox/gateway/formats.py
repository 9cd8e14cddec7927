"""The wire formats the proxy speaks, each described once: how it reports usage, errors, text and tokens.

A proxy route names its format (`Operation.wire`); everything that differs between OpenAI's, Anthropic's
and Gemini's native APIs is read from that format's `WireFormat` in `FORMATS`, so the request path
(`proxy`, `usage`, `exchange`, `limits`) has no branch on the format's name. Adding a format is one
provider module (`providers/<name>.py`) and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from farebox.core.pricing import Usage
from farebox.gateway.model_routes import Provider
from farebox.gateway.providers import anthropic, gemini, openai
from farebox.gateway.providers.payload import JSONObject, as_object, load_object, sub_object
from farebox.gateway.providers.sse import UsageCollector
from farebox.gateway.tokens import Tokenizer
from farebox.gateway.upstream import Wire

__all__ = ["FORMATS", "ErrorBody", "InputCounter", "WireFormat"]


class ErrorBody(Protocol):
    """Builds the format's error envelope for an error farebox answers itself."""

    def __call__(self, status: int, message: str, *, code: str, request_id: str | None) -> dict[str, object]: ...


class InputCounter(Protocol):
    """Counts a request's input tokens offline (when the provider reported none)."""

    def __call__(self, body: JSONObject, *, tokenizer: Tokenizer | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class WireFormat:
    """One wire format, as the proxy needs it."""

    name: Wire
    error_body: ErrorBody
    usage_from_body: Callable[[bytes], Usage | None]
    """The usage a complete response body reports, or None."""
    collector: Callable[[], UsageCollector]
    """A new stream usage collector (see `sse.UsageCollector`)."""
    response_text: Callable[[bytes], str]
    """The generated text of a complete response body, for estimating its output tokens."""
    estimate_input_tokens: InputCounter
    providers: frozenset[Provider] | None = None
    """The providers whose routes may serve this format (None: any); other routes answer 404."""
    query_passthrough: bool = False
    """Whether the client's query string goes upstream, and its `key` parameter may carry the virtual key."""


def _openai_error(status: int, message: str, *, code: str, request_id: str | None) -> dict[str, object]:
    return openai.error_body(status, message, code=code)


def _anthropic_error(status: int, message: str, *, code: str, request_id: str | None) -> dict[str, object]:
    return anthropic.error_body(status, message, request_id=request_id)


def _gemini_error(status: int, message: str, *, code: str, request_id: str | None) -> dict[str, object]:
    return gemini.error_body(status, message)


def _text(parent: JSONObject | None, key: str) -> str:
    value = parent.get(key) if parent is not None else None
    return value if isinstance(value, str) else ""


def _openai_text(body: bytes) -> str:
    document = load_object(body) or {}
    choices = document.get("choices")
    pieces: list[str] = []
    for choice in choices if isinstance(choices, list) else []:
        choice_object = as_object(choice)
        pieces.append(_text(choice_object, "text"))
        pieces.append(_text(sub_object(choice_object, "message"), "content"))
    output = document.get("output")  # a Responses API response
    for item in output if isinstance(output, list) else []:
        pieces.extend(_responses_item_text(as_object(item)))
    return "".join(pieces)


def _responses_item_text(item: JSONObject | None) -> list[str]:
    """What a Responses output item generated: a message's text or refusal, a reasoning summary, call arguments."""
    if item is None:
        return []
    pieces = [_text(item, "arguments")]
    for key in ("content", "summary"):
        parts = item.get(key)
        for part in parts if isinstance(parts, list) else []:
            part_object = as_object(part)
            pieces += [_text(part_object, "text"), _text(part_object, "refusal")]
    return pieces


def _anthropic_text(body: bytes) -> str:
    content = (load_object(body) or {}).get("content")
    return "".join(_text(as_object(block), "text") for block in (content if isinstance(content, list) else []))


FORMATS: Mapping[Wire, WireFormat] = MappingProxyType(
    {
        "openai": WireFormat(
            name="openai",
            error_body=_openai_error,
            usage_from_body=openai.usage_from_body,
            collector=openai.OpenAIUsageCollector,
            response_text=_openai_text,
            estimate_input_tokens=openai.estimate_input_tokens,
        ),
        "anthropic": WireFormat(
            name="anthropic",
            error_body=_anthropic_error,
            usage_from_body=anthropic.usage_from_body,
            collector=anthropic.AnthropicUsageCollector,
            response_text=_anthropic_text,
            estimate_input_tokens=anthropic.estimate_input_tokens,
        ),
        "gemini": WireFormat(
            name="gemini",
            error_body=_gemini_error,
            usage_from_body=gemini.usage_from_body,
            collector=gemini.GeminiUsageCollector,
            response_text=gemini.response_text,
            estimate_input_tokens=gemini.estimate_input_tokens,
            providers=frozenset({Provider.GEMINI, Provider.MOCK}),
            query_passthrough=True,
        ),
    }
)
"""Every wire format by name."""
