"""What one embeddings request may ask for, checked before it is reserved or forwarded.

OpenAI documents an embeddings request as at most 2048 inputs, each at most 8192 tokens, with at most
300,000 tokens across them. farebox refuses a request past its bounds (the settings `embeddings_max_inputs`,
`embeddings_max_input_tokens` and `embeddings_max_request_tokens`, OpenAI's figures by default) with 400 in
OpenAI's shape, so that no single request can keep an upstream busy for minutes or fill the gateway's
memory with its answer: 100,000 inputs in 700 KB used to take 109 s and 8 GB through the built-in mock.

Token-id inputs are counted exactly. Text is counted only when its UTF-8 bytes could exceed a bound (a token
is at least one byte), in a worker thread, and each input only up to its own bound: refusing a megabyte
string costs its first few thousand tokens, not the megabyte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from farebox.errors import InvalidRequest
from farebox.gateway.providers.payload import JSONObject
from farebox.gateway.tokens import Tokenizer

__all__ = ["EmbeddingBounds", "embedding_inputs"]

EmbeddingInput = str | Sequence[int]
"""One input of an embeddings request: text, or the token ids of a text."""


def _token_ids(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, int) and not isinstance(item, bool) for item in value)


def embedding_inputs(value: object) -> list[EmbeddingInput | None]:
    """The inputs of an embeddings request's `input`: one for a string or a token-id array, else one per item.

    An item that is neither text nor token ids is None: it still counts as an input, and the upstream answers
    for its type.
    """
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return []
    if value and _token_ids(value):
        return [value]
    return [item if isinstance(item, str) or _token_ids(item) else None for item in value]


@dataclass(frozen=True, slots=True)
class EmbeddingBounds:
    """The most one embeddings request may ask for."""

    max_inputs: int = 2048
    max_input_tokens: int = 8192
    max_request_tokens: int = 300_000

    async def check(self, document: JSONObject | None, *, model: str, tokenizer: Tokenizer) -> None:
        """Refuse a request over the bounds.

        Args:
            document: the request body.
            model: the upstream model, whose vocabulary counts the text.
            tokenizer: counts text that may be over a bound.

        Raises:
            InvalidRequest: naming the bound, in OpenAI's words.
        """
        inputs = embedding_inputs(document.get("input") if document is not None else None)
        if len(inputs) > self.max_inputs:
            raise InvalidRequest(
                f"Invalid 'input': array too long. Expected an array with maximum length {self.max_inputs}, "
                f"but got an array with length {len(inputs)} instead.",
                code="array_above_max_length",
            )
        # Bytes bound tokens from above: when no input and not the sum can be over, nothing is counted.
        sizes = [len(item.encode("utf-8", "replace")) if isinstance(item, str) else len(item or ()) for item in inputs]
        if max(sizes, default=0) <= self.max_input_tokens and sum(sizes) <= self.max_request_tokens:
            return
        await anyio.to_thread.run_sync(self._count, inputs, model, tokenizer, limiter=tokenizer.threads)

    def _count(self, inputs: Sequence[EmbeddingInput | None], model: str, tokenizer: Tokenizer) -> None:
        total = 0
        for index, item in enumerate(inputs):
            if isinstance(item, str):
                tokens = tokenizer.count_until(item, self.max_input_tokens, model=model)
            else:
                tokens = len(item or ())
            if tokens is None or tokens > self.max_input_tokens:
                raise InvalidRequest(
                    f"Invalid 'input[{index}]': maximum context length is {self.max_input_tokens} tokens.",
                    code="context_length_exceeded",
                )
            total += tokens
        if total > self.max_request_tokens:
            raise InvalidRequest(
                f"Requested {total} tokens, max {self.max_request_tokens} tokens per request",
                code="max_tokens_per_request",
            )
