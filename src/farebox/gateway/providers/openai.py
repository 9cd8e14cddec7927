"""The OpenAI wire format: usage in bodies and streams, stream-usage requests, and the error envelope.

Usage semantics are OpenAI's own and farebox's: `prompt_tokens` already includes
`prompt_tokens_details.cached_tokens` (and `cache_write_tokens`), `completion_tokens` already includes
`completion_tokens_details.reasoning_tokens`. The same parser reads every OpenAI usage shape:

- chat completions, legacy completions, embeddings: `prompt_tokens` / `completion_tokens` + details;
- Responses API, images (gpt-image), token-metered transcriptions: `input_tokens` / `output_tokens`
  with `input_tokens_details.cached_tokens` and `output_tokens_details.reasoning_tokens`;
- duration-metered transcriptions: `{"type": "duration", "seconds": ...}`.

Text-to-speech answers with audio and no usage: it is metered by the request's input characters
(`speech_usage`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from farebox.core.pricing import Usage
from farebox.gateway.providers.payload import (
    JSONObject,
    as_object,
    build_usage,
    count,
    load_json,
    load_object,
    seconds,
    sub_object,
)
from farebox.gateway.providers.sse import SSEDecoder, UsageCollector
from farebox.gateway.tokens import Tokenizer

__all__ = [
    "ERROR_TYPES",
    "RESPONSES_MIN_OUTPUT_TOKENS",
    "OpenAIUsageCollector",
    "UsageChunkFilter",
    "count_error",
    "error_body",
    "estimate_input_tokens",
    "is_usage_only_chunk",
    "speech_usage",
    "usage_at_end",
    "usage_from_body",
    "usage_from_object",
    "with_stream_usage",
]

ERROR_TYPES: Mapping[int, tuple[str, str]] = MappingProxyType(
    {
        400: ("invalid_request_error", "invalid_request"),
        401: ("authentication_error", "invalid_api_key"),
        402: ("insufficient_quota", "budget_exceeded"),
        403: ("permission_error", "model_not_allowed"),
        404: ("not_found_error", "model_not_found"),
        413: ("invalid_request_error", "request_too_large"),
        429: ("rate_limit_error", "rate_limit_exceeded"),
        500: ("api_error", "internal_error"),
        502: ("api_error", "upstream_unreachable"),
        503: ("api_error", "service_unavailable"),
        504: ("api_error", "upstream_timeout"),
    }
)
"""Default `(type, code)` of the errors farebox answers itself on OpenAI routes, by HTTP status.

The OpenAI SDKs pick their exception class from the status alone (401 `AuthenticationError`,
403 `PermissionDeniedError`, 404 `NotFoundError`, 429 `RateLimitError`, 5xx `InternalServerError`, other
4xx `BadRequestError`/`APIStatusError`); the type names match farebox's error tree (`farebox.errors`).
"""

RESPONSES_MIN_OUTPUT_TOKENS = 16
"""The smallest `max_output_tokens` the Responses API accepts (a smaller one is refused with 400)."""

_DELTA_TEXT_FIELDS = ("content", "reasoning_content", "reasoning", "refusal")
"""The text fields of a chat chunk's `delta`, kept for estimates."""
_ITEM_NAMING_FIELDS = frozenset({"type", "id", "call_id", "status"})
"""Fields of a Responses input item that name it rather than carry what the model reads."""
_REPORTS_USAGE = re.compile(rb'"usage"\s*:\s*(?!null\b)')
_CARRIES_MORE_THAN_TEXT = re.compile(rb'"(?:usage|error|type)"\s*:\s*(?!null\b)')
"""Matches a stream event that may carry usage, an error or an event type: one to parse as it comes."""
_RESPONSES_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_RESPONSES_TEXT_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        "response.function_call_arguments.delta",
    }
)


def error_body(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> dict[str, object]:
    """OpenAI's error envelope `{"error": {"message", "type", "param", "code"}}` for an error farebox answers.

    Args:
        status: the HTTP status the error is answered with; picks the default type and code.
        message: what went wrong, for the client (never a trace or a credential).
        error_type: overrides the default type for `status`.
        code: overrides the default code for `status`.
        param: the request parameter at fault, if any.
    """
    default_type, default_code = ERROR_TYPES.get(status, ("api_error", "error"))
    return {
        "error": {
            "message": message,
            "type": error_type or default_type,
            "param": param,
            "code": code or default_code,
        }
    }


def count_error(value: object, name: str, *, minimum: int = 1) -> tuple[str, str] | None:
    """Why OpenAI refuses `value` for the count parameter `name` (`max_tokens`, `n`, ...), as `(code, message)`
    in its words (which farebox also uses for the other providers' counts); None when it is absent or a whole
    number of at least `minimum`."""
    if value is None:
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        return "invalid_type", f"Invalid type for '{name}': expected an integer"
    if value < minimum:
        return (
            "integer_below_min_value",
            f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum}, but got {value:g} instead.",
        )
    return None


def usage_from_object(usage: JSONObject | None) -> Usage | None:
    """A farebox `Usage` from one OpenAI `usage` object, or `None` when it holds no usage."""
    if usage is None:
        return None
    if usage.get("type") == "duration":
        duration = seconds(usage.get("seconds"))
        return None if duration is None else build_usage(seconds=duration)
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt_details = sub_object(usage, "prompt_tokens_details")
        completion_details = sub_object(usage, "completion_tokens_details")
        return build_usage(
            input_tokens=count(usage, "prompt_tokens"),
            output_tokens=count(usage, "completion_tokens"),
            cached_input_tokens=count(prompt_details, "cached_tokens"),
            cache_write_tokens=count(prompt_details, "cache_write_tokens"),
            reasoning_tokens=count(completion_details, "reasoning_tokens"),
        )
    if "input_tokens" in usage or "output_tokens" in usage:
        input_details = sub_object(usage, "input_tokens_details")
        output_details = sub_object(usage, "output_tokens_details")
        return build_usage(
            input_tokens=count(usage, "input_tokens"),
            output_tokens=count(usage, "output_tokens"),
            cached_input_tokens=count(input_details, "cached_tokens"),
            cache_write_tokens=count(input_details, "cache_write_tokens"),
            reasoning_tokens=count(output_details, "reasoning_tokens"),
        )
    return None


def usage_from_body(body: bytes | JSONObject) -> Usage | None:
    """The usage of a non-streaming OpenAI response body, or `None` when the provider reported none.

    Reads `usage` at the top level (chat, completions, embeddings, images, transcriptions, responses)
    or under `response` (a Responses API event object); a top-level one without parsing the rest of the body
    (`usage_at_end`).
    """
    reported = usage_at_end(body) if isinstance(body, bytes) else None
    if reported is not None:
        return reported
    document = load_object(body)
    if document is None:
        return None
    usage = sub_object(document, "usage")
    if usage is None:
        usage = sub_object(sub_object(document, "response"), "usage")
    return usage_from_object(usage)


def usage_at_end(tail: bytes) -> Usage | None:
    """The usage of a body's top-level `usage` object, read from its last `"usage"` key to the body's end.

    `tail` is the body, or any end of it: 2048 embeddings of 3072 values are 137 MB of JSON, and parsing them
    whole would hold the event loop, and every other request, for a second. OpenAI puts `usage` last, or
    nearly. The key's unescaped quotes cannot be inside a string (a quote there is `\\"`), so a match is a key
    or the string value `"usage"`; `{` + the rest of the body is a JSON object only when that key is at the top
    level (a nested one leaves more closing brackets than the `{` opens, and a value is not followed by `:`).
    None when there is no such usage in `tail`, for the whole body to be parsed instead.
    """
    start = tail.rfind(b'"usage"')
    if start < 0:
        return None
    return usage_from_object(sub_object(load_object(b"{" + tail[start:]), "usage"))


def speech_usage(request_body: bytes | JSONObject) -> Usage:
    """Text-to-speech usage: the characters of the request's `input` (the audio reply carries none)."""
    request = load_object(request_body)
    text = request.get("input") if request is not None else None
    return build_usage(characters=len(text) if isinstance(text, str) else 0)


def is_usage_only_chunk(chunk: bytes | JSONObject) -> bool:
    """Whether a stream chunk is the usage-only final chunk (`choices: []` and a `usage` object).

    `stream_options.include_usage` makes OpenAI send it just before `data: [DONE]`; the relay drops it for
    clients that did not ask for usage. `chunk` is a decoded chunk, its JSON bytes, or a raw SSE event
    block (`data: {...}\\n\\n`).
    """
    if isinstance(chunk, Mapping):
        document: JSONObject | None = chunk
    else:
        if _REPORTS_USAGE.search(chunk) is None:  # most chunks: no usage, or the null sent on every one
            return False
        payload = chunk.strip()
        if not payload.startswith(b"{"):
            events = SSEDecoder().feed(payload + b"\n\n")
            payload = events[0].data if events else b""
        document = as_object(load_json(payload)) if payload.startswith(b"{") else None
    if document is None:
        return False
    choices = document.get("choices")
    return isinstance(choices, list) and not choices and isinstance(document.get("usage"), Mapping)


def with_stream_usage(body: JSONObject) -> tuple[dict[str, object], bool]:
    """A copy of a streaming request body that asks for the final usage chunk.

    Returns:
        The body with `stream_options.include_usage` set to true (other stream options kept), and
        whether the client had asked for usage itself (if not, the relay drops the usage chunk).
    """
    options = as_object(body.get("stream_options"))
    asked = options is not None and options.get("include_usage") is True
    updated = dict(body)
    if not asked:
        updated["stream_options"] = {**(options or {}), "include_usage": True}
    return updated, asked


def estimate_input_tokens(body: JSONObject, *, tokenizer: Tokenizer | None = None) -> int:
    """Input tokens of an OpenAI request, counted offline: chat `messages`, or `prompt`/`input`/`instructions`
    (a Responses `input` list: its messages' content, and the text fields of its other items, such as a
    function call's arguments and output); and the `tools` it declares, which OpenAI bills as input too (as
    their JSON text)."""
    counter = tokenizer or Tokenizer()
    model = body.get("model")
    model_name = model if isinstance(model, str) else None
    tools = body.get("tools")
    total = counter.count_content({"tools": tools}, model=model_name) if isinstance(tools, list) and tools else 0
    messages = body.get("messages")
    if isinstance(messages, list):
        return total + counter.count_messages(messages, model=model_name)
    for key in ("instructions", "prompt", "input"):
        total += _count_input(body.get(key), counter, model_name)
    return total


def _count_input(value: object, counter: Tokenizer, model: str | None) -> int:
    if isinstance(value, str):
        return counter.count(value, model=model)
    if isinstance(value, list):
        if value and all(isinstance(item, int) for item in value):
            return len(value)  # already token ids
        total = 0
        for item in value:
            if isinstance(item, Mapping) and "content" not in item:
                # A Responses item that is no message (a function call, its output, a reasoning item): the
                # model reads its text fields as input too.
                total += sum(
                    counter.count_content(field, model=model)
                    for name, field in item.items()
                    if name not in _ITEM_NAMING_FIELDS
                )
            elif isinstance(item, Mapping):
                total += counter.count_content(item.get("content"), model=model)
            else:
                total += _count_input(item, counter, model)
        return total
    return 0


class OpenAIUsageCollector(UsageCollector):
    """Observes an OpenAI SSE stream (chat, completions or Responses API) for its usage and text.

    `complete` is set by `data: [DONE]` or a final Responses API event (`response.completed`,
    `response.incomplete`, `response.failed`); `response.failed` also sets `error` to the response's `error`.
    """

    __slots__ = ("_usage",)

    def __init__(self) -> None:
        super().__init__()
        self._usage: Usage | None = None

    @property
    def usage(self) -> Usage | None:
        """The usage the stream reported (the `include_usage` chunk), or `None`."""
        return self._usage

    def _take_marker(self, data: bytes) -> bool:
        if data[:6] == b"[DONE]":
            self.complete = True
            return True
        return False

    def _text_only(self, data: bytes) -> bool:
        # A chat or completions text delta: no `usage` but a null one (sent on every chunk with
        # `include_usage`), no `error`, no `type` (Responses API events, tool calls).
        return _CARRIES_MORE_THAN_TEXT.search(data) is None

    def _observe(self, document: JSONObject) -> None:
        # Runs for every chunk of every stream: each look-up is done once, and the absent ones cost no call.
        kind = document.get("type")
        if kind is not None:
            if isinstance(kind, str) and kind.startswith("response."):
                self._observe_responses_event(kind, document)
                return
            if kind == "error":  # the Responses API's in-stream error event
                self.error = document
                return
        usage = document.get("usage")
        if usage is not None:
            reported = usage_from_object(as_object(usage))
            if reported is not None:
                self._usage = reported
        error = document.get("error")
        if error is not None and (error_object := as_object(error)) is not None:
            self.error = error_object
        choices = document.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if (choice_object := as_object(choice)) is not None:
                    self._observe_choice(choice_object)

    def _observe_choice(self, choice: JSONObject) -> None:
        pieces = self._pieces
        text = choice.get("text")
        if text and isinstance(text, str):
            pieces.append(text)
        delta = as_object(choice.get("delta"))
        if delta is None:
            return
        for key in _DELTA_TEXT_FIELDS:
            value = delta.get(key)
            if value and isinstance(value, str):
                pieces.append(value)
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for call in tool_calls:
                function = sub_object(as_object(call), "function")
                if function is not None:
                    self._take(function.get("arguments"))

    def _observe_responses_event(self, kind: str, document: JSONObject) -> None:
        if kind in _RESPONSES_TEXT_EVENTS:
            self._take(document.get("delta"))
        elif kind in _RESPONSES_FINAL_EVENTS:
            response = sub_object(document, "response")
            usage = usage_from_object(sub_object(response, "usage"))
            if usage is not None:
                self._usage = usage
            if kind == "response.failed":
                self.error = sub_object(response, "error") or {"code": "response_failed"}
            self.complete = True

    def _take(self, value: object) -> None:
        if isinstance(value, str) and value:
            self._pieces.append(value)


class UsageChunkFilter:
    """Passes an OpenAI stream through unchanged except for the usage-only final chunk, which it drops.

    For clients that did not ask for `stream_options.include_usage` when farebox asked on their behalf.
    Whole events are forwarded as soon as their closing blank line arrives; only an unfinished event is
    held back.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send on for this upstream chunk (possibly empty while an event is incomplete)."""
        return self._pass(self._pending + chunk if self._pending else chunk, final=False)

    def flush(self) -> bytes:
        """What is still held back when the upstream ends: whole events judged, an unterminated one as it came."""
        rest, self._pending = self._pending, b""
        forwarded = self._pass(rest, final=True) if rest else b""
        tail, self._pending = self._pending, b""
        return forwarded + tail

    def _pass(self, buffer: bytes, *, final: bool) -> bytes:
        forwarded: list[bytes] = []
        block_start = 0
        offset = 0
        # A final `\r` may be the first half of `\r\n`: judge that line when the next byte arrives (or at the end).
        complete = buffer[:-1] if buffer.endswith(b"\r") and not final else buffer
        for line in complete.splitlines(keepends=True):
            offset += len(line)
            if line.endswith((b"\n", b"\r")) and not line.strip(b"\r\n"):
                block = buffer[block_start:offset]
                if not is_usage_only_chunk(block):
                    forwarded.append(block)
                block_start = offset
        self._pending = buffer[block_start:]
        return b"".join(forwarded)
