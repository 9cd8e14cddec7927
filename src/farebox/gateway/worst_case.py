"""The most a request can cost, from its body alone: what a budget reservation holds before forwarding.

Input: every token of these BPE vocabularies stands for at least one byte, so a prompt's UTF-8 byte count
bounds its token count; the same per-format text extraction the usage estimates use counts bytes instead
of tokens (and adds the same framing tokens), so no vocabulary is loaded on the hot path. Output: the
request's own limit (`max_completion_tokens`, `max_tokens`, `max_output_tokens`, only `max_output_tokens` on
the Responses API; Anthropic's `max_tokens`; Gemini's `generationConfig.maxOutputTokens`), times the number
of choices asked for, or the configured default when the request sets none. Speech reserves its input
characters, image generation its image count. Images, audio and files inside a prompt are not counted, nor
the stored context a Responses request names (`previous_response_id`, `conversation`); transcriptions
reserve nothing (their duration is only known upstream), so such requests are refused only once a cap is spent.
"""

from __future__ import annotations

from decimal import Decimal

from farebox.core.pricing import Usage
from farebox.gateway.formats import FORMATS
from farebox.gateway.operations import Operation, ParsedRequest
from farebox.gateway.providers.payload import JSONObject, optional_count, sub_object
from farebox.gateway.tokens import Tokenizer

__all__ = ["ByteBound", "worst_case_usage"]

_OPENAI_LIMITS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


class ByteBound(Tokenizer):
    """A 'tokenizer' that counts UTF-8 bytes: never fewer than the tokens of any byte-level BPE vocabulary."""

    def count(self, text: str, *, model: str | None = None) -> int:
        return len(text.encode("utf-8", "replace"))


_BYTES = ByteBound()


def worst_case_usage(operation: Operation, parsed: ParsedRequest, *, default_output_tokens: int) -> Usage:
    """The largest usage `parsed` can produce (see the module docstring)."""
    document = parsed.document
    if document is None:
        return Usage()
    if operation.operation == "audio.speech":
        text = document.get("input")
        return Usage(characters=len(text) if isinstance(text, str) else 0)
    if operation.operation == "images":
        return Usage(quantity=Decimal(optional_count(document, "n") or 1))
    input_tokens = FORMATS[operation.wire].estimate_input_tokens(document, tokenizer=_BYTES)
    if operation.operation == "embeddings":
        return Usage(input_tokens=input_tokens)
    return Usage(input_tokens=input_tokens, output_tokens=_output_limit(operation, document, default_output_tokens))


def _output_limit(operation: Operation, document: JSONObject, default: int) -> int:
    if operation.wire == "gemini":
        config = sub_object(document, "generationConfig")
        limit = optional_count(config, "maxOutputTokens")
        choices = optional_count(config, "candidateCount") or 1
    elif operation.operation == "responses":
        # The only limit the Responses API applies: an upstream that ignores `max_tokens` or `n` here (as it
        # should) must not find the reservation counting on them.
        limit = optional_count(document, "max_output_tokens")
        choices = 1
    else:
        limits = (optional_count(document, name) for name in _OPENAI_LIMITS)
        limit = next((n for n in limits if n is not None), None)
        choices = (optional_count(document, "n") or 1) if operation.wire == "openai" else 1
    return (default if limit is None else limit) * max(choices, 1)
