"""The Gemini `generateContent` wire format: `usageMetadata` in bodies and streams, and the error envelope.

`promptTokenCount` is the total input and already includes `cachedContentTokenCount`; tool-use prompt
tokens (`toolUsePromptTokenCount`) are input too and are added to it. `candidatesTokenCount` *excludes*
thinking: farebox's output is `candidatesTokenCount + thoughtsTokenCount`, with the thoughts recorded as
reasoning tokens.

`streamGenerateContent?alt=sse` sends one `GenerateContentResponse` per `data:` line, each with the
cumulative `usageMetadata` so far, so the last one wins. Without `alt=sse` the stream is one JSON array
of the same objects, which `usage_from_body` reads once the body is complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import orjson

from farebox.core.pricing import Usage
from farebox.gateway.providers.payload import (
    JSONObject,
    as_object,
    build_usage,
    count,
    load_json,
    sub_object,
)
from farebox.gateway.providers.sse import UsageCollector
from farebox.gateway.tokens import Tokenizer

__all__ = [
    "ERROR_STATUSES",
    "GeminiUsageCollector",
    "error_body",
    "estimate_input_tokens",
    "response_text",
    "usage_from_body",
    "usage_from_object",
]

ERROR_STATUSES: Mapping[int, str] = MappingProxyType(
    {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        402: "RESOURCE_EXHAUSTED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        413: "INVALID_ARGUMENT",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        502: "UNAVAILABLE",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }
)
"""The `google.rpc.Code` name Gemini's error envelope carries for each HTTP status."""

_USAGE_FIELDS = ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount")


def error_body(status: int, message: str) -> dict[str, object]:
    """Gemini's error envelope `{"error": {"code", "message", "status"}}`."""
    return {"error": {"code": status, "message": message, "status": ERROR_STATUSES.get(status, "UNKNOWN")}}


def usage_from_object(metadata: JSONObject | None) -> Usage | None:
    """A farebox `Usage` from one `usageMetadata` object, or `None` when absent."""
    if metadata is None or not any(field in metadata for field in _USAGE_FIELDS):
        return None
    thoughts = count(metadata, "thoughtsTokenCount")
    return build_usage(
        input_tokens=count(metadata, "promptTokenCount") + count(metadata, "toolUsePromptTokenCount"),
        output_tokens=count(metadata, "candidatesTokenCount") + thoughts,
        cached_input_tokens=count(metadata, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def usage_from_body(body: bytes | JSONObject | list[object]) -> Usage | None:
    """The usage of a `generateContent` body (or a complete non-SSE stream: a JSON array), or `None`."""
    document: object = load_json(body) if isinstance(body, bytes) else body
    if isinstance(document, list):
        usage = None
        for item in document:
            usage = usage_from_object(sub_object(as_object(item), "usageMetadata")) or usage
        return usage
    return usage_from_object(sub_object(as_object(document), "usageMetadata"))


def response_text(body: bytes) -> str:
    """The generated text of a `generateContent` body (or of a complete non-SSE stream, a JSON array)."""
    document = load_json(body)
    items = document if isinstance(document, list) else [document]
    return "".join(_candidates_text(as_object(item)) for item in items)


def _candidates_text(response: JSONObject | None) -> str:
    candidates = response.get("candidates") if response is not None else None
    pieces: list[str] = []
    for candidate in candidates if isinstance(candidates, list) else []:
        pieces.append(_parts_text(sub_object(as_object(candidate), "content")))
    return "".join(pieces)


def estimate_input_tokens(body: JSONObject, *, tokenizer: Tokenizer | None = None) -> int:
    """Input tokens of a `generateContent` request (`contents`, `systemInstruction`), counted offline.

    Gemini's tokenizer is not public; the estimate counts the text parts with o200k_base.
    """
    counter = tokenizer or Tokenizer()
    total = 0
    contents = body.get("contents")
    for content in contents if isinstance(contents, list) else []:
        total += counter.count(_parts_text(as_object(content)))
    total += counter.count(_parts_text(sub_object(body, "systemInstruction")))
    return total


def _parts_text(content: JSONObject | None) -> str:
    """The text of a `Content` object's parts (text, and function calls/results as JSON)."""
    parts = content.get("parts") if content is not None else None
    pieces: list[str] = []
    for part in parts if isinstance(parts, list) else []:
        part_object = as_object(part)
        if part_object is None:
            continue
        text = part_object.get("text")
        if isinstance(text, str):
            pieces.append(text)
        for key in ("functionCall", "functionResponse"):
            value = part_object.get(key)
            if value is not None:
                pieces.append(orjson.dumps(value).decode())
    return "".join(pieces)


class GeminiUsageCollector(UsageCollector):
    """Observes a `streamGenerateContent?alt=sse` stream for its usage and generated text.

    `complete` is set once a candidate's `finishReason` was seen.
    """

    __slots__ = ("_usage",)

    def __init__(self) -> None:
        super().__init__()
        self._usage: Usage | None = None

    @property
    def usage(self) -> Usage | None:
        """The last cumulative `usageMetadata` reported, or `None`."""
        return self._usage

    def _observe(self, document: JSONObject) -> None:
        usage = usage_from_object(sub_object(document, "usageMetadata"))
        if usage is not None:
            self._usage = usage
        error = sub_object(document, "error")
        if error is not None:
            self.error = error
        candidates = document.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else []:
            candidate_object = as_object(candidate)
            if candidate_object is None:
                continue
            text = _parts_text(sub_object(candidate_object, "content"))
            if text:
                self._pieces.append(text)
            if candidate_object.get("finishReason"):
                self.complete = True
