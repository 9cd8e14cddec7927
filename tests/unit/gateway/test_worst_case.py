"""The worst case a budget reservation holds: an upper bound of what the request can be charged."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.pricing import Usage
from farebox.gateway.operations import OPERATIONS, Operation, parse_request
from farebox.gateway.tokens import Tokenizer
from farebox.gateway.worst_case import ByteBound, worst_case_usage

BY_OPERATION = {(op.operation, op.streams): op for op in OPERATIONS}
CHAT = BY_OPERATION["chat.completions", False]
MESSAGES = BY_OPERATION["messages", False]
GEMINI = BY_OPERATION["generate_content", False]


def usage(operation: Operation, body: dict[str, object], *, default: int = 4096) -> Usage:
    parsed = parse_request(
        operation, orjson.dumps(body), content_type="application/json", path_model="gemini-2.5-flash"
    )
    return worst_case_usage(operation, parsed, default_output_tokens=default)


@given(st.text(max_size=300))
def test_utf8_bytes_never_undercount_tokens(text: str) -> None:
    assert ByteBound().count(text) >= Tokenizer().count(text)


def test_chat_output_is_the_request_limit_times_its_choices_or_the_default() -> None:
    messages = [{"role": "user", "content": "héllo"}]
    assert (
        usage(CHAT, {"model": "m", "messages": messages, "max_completion_tokens": 70, "max_tokens": 9}).output_tokens
        == 70
    )
    assert usage(CHAT, {"model": "m", "messages": messages, "max_tokens": 9, "n": 3}).output_tokens == 27
    assert usage(CHAT, {"model": "m", "messages": messages}, default=500).output_tokens == 500
    # 3 framing tokens per message + 3 to prime the reply, plus the bytes of "user" and "héllo" (6 bytes).
    assert usage(CHAT, {"model": "m", "messages": messages}).input_tokens == 3 + 3 + 4 + 6


def test_anthropic_and_gemini_limits() -> None:
    body = {
        "model": "claude",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert usage(MESSAGES, body).output_tokens == 1024
    assert usage(MESSAGES, body).input_tokens >= len("Be brief.") + len("hi")
    gemini = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "generationConfig": {"maxOutputTokens": 64, "candidateCount": 2},
    }
    assert usage(GEMINI, gemini) == Usage(input_tokens=2, output_tokens=128)
    assert usage(GEMINI, {"contents": []}, default=10).output_tokens == 10


@pytest.mark.parametrize(
    ("operation", "body", "expected"),
    [
        ("embeddings", {"model": "e", "input": "four"}, Usage(input_tokens=4)),
        ("audio.speech", {"model": "tts-1", "input": "Hello there", "voice": "alloy"}, Usage(characters=11)),
        ("images", {"model": "gpt-image-1", "prompt": "a cat", "n": 2}, Usage(quantity=Decimal(2))),
        ("images", {"model": "gpt-image-1", "prompt": "a cat"}, Usage(quantity=Decimal(1))),
    ],
)
def test_other_operations(operation: str, body: dict[str, object], expected: Usage) -> None:
    assert usage(BY_OPERATION[operation, False], body) == expected
