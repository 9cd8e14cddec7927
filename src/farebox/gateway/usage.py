"""Usage of one proxied request: from the provider's own report, else counted offline and flagged estimated.

The provider's report is read from the response body (or the stream collector). When it reported none,
or the stream was cut short, the input is counted from the request and the output from the text the
response carried, with the offline tokenizer. Counting runs in a worker thread: the first count loads a
vocabulary (~50 ms), which must not stall the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import anyio

from farebox.core.pricing import Usage
from farebox.gateway.formats import FORMATS
from farebox.gateway.operations import Operation, ParsedRequest
from farebox.gateway.providers import openai
from farebox.gateway.providers.media import audio_seconds
from farebox.gateway.providers.payload import build_usage, load_object
from farebox.gateway.providers.sse import UsageCollector
from farebox.gateway.tokens import Tokenizer

__all__ = ["Measured", "collector_for", "estimate", "measure_answer", "measure_body", "response_text"]

_TAIL_BYTES = 64 * 1024
"""How much of an answer's end is searched for its usage before the whole is joined and parsed."""


@dataclass(frozen=True, slots=True)
class Measured:
    """The usage of a request and whether farebox counted (part of) it itself."""

    usage: Usage
    estimated: bool


def collector_for(operation: Operation) -> UsageCollector:
    """A stream usage collector for the operation's wire format."""
    return FORMATS[operation.wire].collector()


def reported_usage(operation: Operation, parsed: ParsedRequest, body: bytes) -> Usage | None:
    """The usage a complete (non-streaming) response reports, or the exact measure the request implies."""
    if operation.operation == "audio.speech":
        return openai.speech_usage(parsed.body)
    usage = FORMATS[operation.wire].usage_from_body(body)
    if usage is None and operation.operation == "images":
        # Per-image models (dall-e) report no usage: the meter is the number of images.
        data = (load_object(body) or {}).get("data")
        return Usage(quantity=Decimal(len(data))) if isinstance(data, list) else None
    if usage is None and operation.operation == "audio.transcriptions" and parsed.form is not None:
        audio = parsed.form.get("file")
        if audio is not None:
            # A text/srt/vtt answer carries no usage: meter the audio's own duration.
            return build_usage(seconds=Decimal(str(audio_seconds(audio))).quantize(Decimal("0.000001")))
    return usage


def response_text(operation: Operation, body: bytes) -> str:
    """The generated text of a complete response, for estimating its output tokens."""
    return FORMATS[operation.wire].response_text(body)


def _count(
    operation: Operation, parsed: ParsedRequest, text: str, partial: Usage | None, tokenizer: Tokenizer
) -> Usage:
    document = parsed.document
    if partial is not None and partial.input_tokens:
        input_tokens = partial.input_tokens
    elif document is None:
        input_tokens = 0
    else:
        input_tokens = FORMATS[operation.wire].estimate_input_tokens(document, tokenizer=tokenizer)
    output_tokens = tokenizer.count(text, model=parsed.model)
    if partial is not None:
        output_tokens = max(output_tokens, partial.output_tokens)
        return build_usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=partial.cached_input_tokens,
            cache_write_tokens=partial.cache_write_tokens,
            reasoning_tokens=partial.reasoning_tokens,
        )
    return build_usage(input_tokens=input_tokens, output_tokens=output_tokens)


async def estimate(
    operation: Operation, parsed: ParsedRequest, *, text: str, partial: Usage | None, tokenizer: Tokenizer
) -> Usage:
    """Usage counted offline: input from the request (or the partial report), output from `text`."""
    return await anyio.to_thread.run_sync(
        _count, operation, parsed, text, partial, tokenizer, limiter=tokenizer.threads
    )


async def measure_body(operation: Operation, parsed: ParsedRequest, body: bytes, *, tokenizer: Tokenizer) -> Measured:
    """The usage of a complete successful response: reported, or estimated when the provider gave none."""
    usage = reported_usage(operation, parsed, body)
    if usage is not None:
        return Measured(usage, False)
    text = response_text(operation, body)
    return Measured(await estimate(operation, parsed, text=text, partial=None, tokenizer=tokenizer), True)


async def measure_answer(
    operation: Operation, parsed: ParsedRequest, chunks: Sequence[bytes], *, tokenizer: Tokenizer
) -> Measured:
    """`measure_body` of an answer in the chunks it arrived in, joined only when its usage is not at its end.

    OpenAI answers end with their usage: read from the last chunks, a 68 MB embeddings answer is measured
    without one 68 MB copy (and parse) holding the event loop.
    """
    if operation.wire == "openai" and operation.operation != "audio.speech":  # speech is metered by its request
        usage = openai.usage_at_end(_tail(chunks))
        if usage is not None:
            return Measured(usage, False)
    return await measure_body(operation, parsed, b"".join(chunks), tokenizer=tokenizer)


def _tail(chunks: Sequence[bytes]) -> bytes:
    """The last chunks, joined: at least `_TAIL_BYTES` of the end, or the whole when it is shorter."""
    size = 0
    first = len(chunks)
    while first and size < _TAIL_BYTES:
        first -= 1
        size += len(chunks[first])
    return b"".join(chunks[first:])
