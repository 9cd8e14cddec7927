"""Embeddings bounds: how many inputs, how many tokens each and in all; text counted only when it could be over."""

from __future__ import annotations

from typing import Any

import pytest

from farebox.errors import InvalidRequest
from farebox.gateway.bounds import EmbeddingBounds, embedding_inputs
from farebox.gateway.tokens import Tokenizer

pytestmark = pytest.mark.anyio

MODEL = "text-embedding-3-small"
SMALL = EmbeddingBounds(max_inputs=3, max_input_tokens=10, max_request_tokens=25)


class CountingTokenizer(Tokenizer):
    """The real tokenizer, remembering what it was asked to count."""

    def __init__(self) -> None:
        self.counted: list[str] = []

    def count_until(self, text: str, limit: int, *, model: str | None = None) -> int | None:
        self.counted.append(text)
        return super().count_until(text, limit, model=model)


@pytest.mark.parametrize(
    ("value", "inputs"),
    [
        ("one text", ["one text"]),
        ([1, 2, 3], [[1, 2, 3]]),  # one input, as token ids
        (["a", "b"], ["a", "b"]),
        ([[1, 2], [3]], [[1, 2], [3]]),
        (["a", 5, {"x": 1}, [1, "2"], [True]], ["a", None, None, None, None]),  # not text nor ids: the upstream's
        ([], []),
        (None, []),
        ({"text": "a"}, []),
    ],
)
def test_the_inputs_of_a_request(value: Any, inputs: list[Any]) -> None:
    assert embedding_inputs(value) == inputs


async def test_more_inputs_than_the_bound_are_refused_in_openai_words() -> None:
    with pytest.raises(InvalidRequest) as caught:
        await SMALL.check({"input": ["a", "b", "c", "d"]}, model=MODEL, tokenizer=Tokenizer())
    assert caught.value.status == 400 and caught.value.code == "array_above_max_length"
    assert caught.value.message == (
        "Invalid 'input': array too long. Expected an array with maximum length 3, but got an array with length 4 "
        "instead."
    )
    await SMALL.check({"input": ["a", "b", "c"]}, model=MODEL, tokenizer=Tokenizer())


@pytest.mark.parametrize(
    ("value", "index"),
    [
        (" hello" * 11, 0),  # 11 tokens of text
        (["ok", " hello" * 11], 1),
        ([list(range(11))], 0),  # 11 token ids
        ([[1], list(range(11))], 1),
        ("x" * 1_000_000, 0),  # counted only up to the bound
    ],
)
async def test_an_input_over_its_token_bound_is_refused_naming_it(value: Any, index: int) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await SMALL.check({"input": value}, model=MODEL, tokenizer=Tokenizer())
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.message == f"Invalid 'input[{index}]': maximum context length is 10 tokens."


async def test_the_tokens_of_all_inputs_together_are_bounded() -> None:
    with pytest.raises(InvalidRequest) as caught:
        await SMALL.check({"input": [" hello" * 10, " hello" * 10, [1] * 6]}, model=MODEL, tokenizer=Tokenizer())
    assert caught.value.code == "max_tokens_per_request"
    assert caught.value.message == "Requested 26 tokens, max 25 tokens per request"
    await SMALL.check({"input": [" hello" * 10, " hello" * 10, [1] * 5]}, model=MODEL, tokenizer=Tokenizer())


async def test_text_that_cannot_be_over_a_bound_is_not_counted() -> None:
    tokenizer = CountingTokenizer()
    await SMALL.check({"input": ["0123456789", "abc", [1] * 10]}, model=MODEL, tokenizer=tokenizer)  # 10 bytes at most
    assert tokenizer.counted == []
    await SMALL.check({"input": [" hello hello", "x"]}, model=MODEL, tokenizer=tokenizer)  # 12 bytes, 2 tokens
    assert tokenizer.counted == [" hello hello", "x"]


async def test_no_input_is_for_the_upstream_to_answer() -> None:
    await SMALL.check({"model": MODEL}, model=MODEL, tokenizer=Tokenizer())
    await SMALL.check(None, model=MODEL, tokenizer=Tokenizer())


def test_count_until_stops_past_the_limit_and_agrees_with_count() -> None:
    tokenizer = Tokenizer()
    text = " hello" * 50 + "\ud800"  # a lone surrogate is counted as U+FFFD, as by count()
    exact = tokenizer.count(text, model=MODEL)
    assert tokenizer.count_until(text, exact, model=MODEL) == exact
    assert tokenizer.count_until(text, exact - 1, model=MODEL) is None
    assert tokenizer.count_until("", 0) == 0
