"""The Anthropic Messages wire format: usage in bodies and streams, and the error envelope.

Anthropic reports cache tokens *beside* its input count: `input_tokens` excludes the tokens read from
(`cache_read_input_tokens`) and written to (`cache_creation_input_tokens`) the prompt cache. farebox's
`Usage.input_tokens` is the total input, so the adapter adds the three. `output_tokens` includes any
thinking; `output_tokens_details.thinking_tokens` (when sent) becomes `reasoning_tokens`.

In a stream, `message_start` carries the input-side usage and a first output count; each
`message_delta` carries *cumulative* counts (always `output_tokens`, and on newer API versions the input
and cache counts too), so the last value of each field wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from farebox.core.pricing import Usage
from farebox.gateway.providers.payload import (
    JSONObject,
    build_usage,
    count,
    load_object,
    optional_count,
    sub_object,
)
from farebox.gateway.providers.sse import UsageCollector
from farebox.gateway.tokens import Tokenizer

__all__ = [
    "ERROR_TYPES",
    "AnthropicUsageCollector",
    "error_body",
    "estimate_input_tokens",
    "usage_from_body",
    "usage_from_object",
]

ERROR_TYPES: Mapping[int, str] = MappingProxyType(
    {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        502: "api_error",
        503: "api_error",
        504: "timeout_error",
        529: "overloaded_error",
    }
)
"""Anthropic's error type for each HTTP status, as its API documents them.

The Anthropic SDKs pick their exception class from the status (401 `AuthenticationError`, 403
`PermissionDeniedError`, 404 `NotFoundError`, 413 `RequestTooLargeError`, 429 `RateLimitError`,
529 `OverloadedError`, other 5xx `InternalServerError`).
"""

_USAGE_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


def error_body(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    request_id: str | None = None,
) -> dict[str, object]:
    """Anthropic's error envelope `{"type": "error", "error": {"type", "message"}}` for an error farebox answers.

    Args:
        status: the HTTP status the error is answered with; picks the default type.
        message: what went wrong, for the client.
        error_type: overrides the default type for `status`.
        request_id: added as the top-level `request_id`, as Anthropic does, when given.
    """
    body: dict[str, object] = {
        "type": "error",
        "error": {"type": error_type or ERROR_TYPES.get(status, "api_error"), "message": message},
    }
    if request_id is not None:
        body["request_id"] = request_id
    return body


def usage_from_object(usage: JSONObject | None) -> Usage | None:
    """A farebox `Usage` from one Anthropic `usage` object (input made total), or `None` when absent."""
    if usage is None or not any(field in usage for field in _USAGE_FIELDS):
        return None
    cache_write = count(usage, "cache_creation_input_tokens")
    cache_read = count(usage, "cache_read_input_tokens")
    return build_usage(
        input_tokens=count(usage, "input_tokens") + cache_write + cache_read,
        output_tokens=count(usage, "output_tokens"),
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=count(sub_object(usage, "output_tokens_details"), "thinking_tokens"),
    )


def usage_from_body(body: bytes | JSONObject) -> Usage | None:
    """The usage of a non-streaming Messages response body, or `None` when the provider reported none."""
    return usage_from_object(sub_object(load_object(body), "usage"))


def estimate_input_tokens(body: JSONObject, *, tokenizer: Tokenizer | None = None) -> int:
    """Input tokens of a Messages request (`system`, `messages`, `tools`), counted offline with o200k_base.

    Claude's tokenizer is not public; the estimate uses OpenAI's chat framing as an approximation.
    """
    counter = tokenizer or Tokenizer()
    messages = body.get("messages")
    total = counter.count_messages(messages if isinstance(messages, list) else [])
    system = body.get("system")
    if isinstance(system, str):
        total += counter.count(system)
    elif isinstance(system, list):
        total += counter.count_content(system)
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        total += counter.count_content({"tools": tools})
    return total


class AnthropicUsageCollector(UsageCollector):
    """Observes an Anthropic Messages SSE stream for its usage and generated text.

    `complete` is set by `message_stop`; `error` holds an in-stream `error` event (e.g. `overloaded_error`).
    """

    __slots__ = ("_counts", "_details")

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, int] = {}
        self._details: JSONObject | None = None

    @property
    def usage(self) -> Usage | None:
        """The latest usage reported: final after `message_stop`, input-side only if the stream was cut short."""
        if not self._counts:
            return None
        usage: dict[str, object] = dict(self._counts)
        if self._details is not None:
            usage["output_tokens_details"] = self._details
        return usage_from_object(usage)

    def _observe(self, document: JSONObject) -> None:
        kind = document.get("type")
        if kind == "content_block_delta":
            delta = sub_object(document, "delta")
            if delta is not None:
                for key in ("text", "thinking", "partial_json"):
                    self._take(delta.get(key))
        elif kind == "content_block_start":
            block = sub_object(document, "content_block")
            if block is not None:
                self._take(block.get("text"))
        elif kind == "message_start":
            self._merge(sub_object(sub_object(document, "message"), "usage"))
        elif kind == "message_delta":
            self._merge(sub_object(document, "usage"))
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.error = sub_object(document, "error")

    def _merge(self, usage: JSONObject | None) -> None:
        if usage is None:
            return
        for field in _USAGE_FIELDS:
            value = optional_count(usage, field)
            if value is not None:
                self._counts[field] = value
        details = sub_object(usage, "output_tokens_details")
        if details is not None:
            self._details = details

    def _take(self, value: object) -> None:
        if isinstance(value, str) and value:
            self._pieces.append(value)
