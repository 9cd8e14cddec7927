"""Reservation bounds: the worst case never undercounts what the offline counter sees; counting of message fields."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.pricing import Usage
from farebox.errors import InvalidRequest
from farebox.gateway.formats import FORMATS
from farebox.gateway.operations import OPERATIONS, Operation, parse_request
from farebox.gateway.tokens import Tokenizer
from farebox.gateway.worst_case import worst_case_usage

BY_PATH = {operation.path: operation for operation in OPERATIONS}
CHAT = BY_PATH["/v1/chat/completions"]
COMPLETIONS = BY_PATH["/v1/completions"]
MESSAGES = BY_PATH["/v1/messages"]
GEMINI_STREAM = BY_PATH["/v1/models/{model}:streamGenerateContent"]
TOKENS = Tokenizer()


def worst(operation: Operation, body: dict[str, Any], *, default: int = 1000) -> Usage:
    parsed = parse_request(operation, orjson.dumps(body), content_type="application/json", path_model="g")
    return worst_case_usage(operation, parsed, default_output_tokens=default)


_text = st.text(max_size=40)
_content = _text | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _text}), max_size=3)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": _content}, optional={"name": _text}
)


@given(st.lists(_message, max_size=5))
def test_chat_input_bound_covers_the_token_estimate(messages: list[dict[str, Any]]) -> None:
    body = {"model": "gpt-4o", "messages": messages}
    assert worst(CHAT, body).input_tokens >= FORMATS["openai"].estimate_input_tokens(body, tokenizer=TOKENS)


@given(st.lists(_message, min_size=1, max_size=4), _text)
def test_anthropic_input_bound_covers_the_token_estimate(messages: list[dict[str, Any]], system: str) -> None:
    body = {"model": "claude", "max_tokens": 5, "system": system, "messages": messages}
    assert worst(MESSAGES, body).input_tokens >= FORMATS["anthropic"].estimate_input_tokens(body, tokenizer=TOKENS)


@given(st.lists(st.lists(_text, max_size=3), max_size=3))
def test_gemini_input_bound_covers_the_token_estimate(texts: list[list[str]]) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": text} for text in parts]} for parts in texts]}
    assert worst(GEMINI_STREAM, body).input_tokens >= FORMATS["gemini"].estimate_input_tokens(body, tokenizer=TOKENS)


@pytest.mark.parametrize(
    ("operation", "body", "output"),
    [
        (CHAT, {"max_output_tokens": 30}, 30),  # the first limit present wins, in the documented order
        (CHAT, {"max_tokens": 30, "max_output_tokens": 99}, 30),
        (CHAT, {"max_tokens": 10.0, "n": 2.0}, 20),  # integral floats are counts
        (COMPLETIONS, {"prompt": "x", "max_tokens": 5, "n": 4}, 20),
        (MESSAGES, {"max_tokens": 64, "n": 3}, 64),  # Anthropic has no `n`: one choice
        (MESSAGES, {"max_completion_tokens": 7}, 7),
        (GEMINI_STREAM, {"generationConfig": {"candidateCount": 3}}, 3000),
        (GEMINI_STREAM, {"generationConfig": "bad", "max_tokens": 5}, 1000),  # OpenAI's fields mean nothing here
    ],
)
def test_output_limits(operation: Operation, body: dict[str, Any], output: int) -> None:
    assert worst(operation, {"model": "m", **body}).output_tokens == output


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/v1/embeddings", {"model": "e", "input": [[1, 2, 3], [4]], "max_tokens": 9}, Usage(input_tokens=4)),
        ("/v1/embeddings", {"model": "e", "input": ["ab", "cde"]}, Usage(input_tokens=5)),
        ("/v1/audio/speech", {"model": "tts-1", "input": "😀 hi"}, Usage(characters=4)),
        ("/v1/audio/speech", {"model": "tts-1", "input": None}, Usage()),
    ],
)
def test_operations_that_reserve_other_meters(path: str, body: dict[str, Any], expected: Usage) -> None:
    assert worst(BY_PATH[path], body) == expected


def test_a_transcription_reserves_nothing() -> None:
    transcription = BY_PATH["/v1/audio/transcriptions"]
    form = b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--b--\r\n'
    parsed = parse_request(transcription, form, content_type="multipart/form-data; boundary=b")
    assert worst_case_usage(transcription, parsed, default_output_tokens=1000) == Usage()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        (None, ""),
        (True, ""),
        (42, ""),
        (1.5, ""),
        ([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:..."}}, "b"], "ab"),
        ({"name": "f", "arguments": "{}"}, '{"name":"f","arguments":"{}"}'),
        ({1: "x"}, '{"1":"x"}'),  # non-string keys do not raise
    ],
)
def test_count_content_counts_the_text_of_a_field(value: object, text: str) -> None:
    assert TOKENS.count_content(value) == TOKENS.count(text)


def test_a_name_costs_one_token_more_than_its_text() -> None:
    plain = [{"role": "user", "content": "hi"}]
    named = [{"role": "user", "content": "hi", "name": "alice"}]
    assert TOKENS.count_messages(named) - TOKENS.count_messages(plain) == TOKENS.count("alice") + 1


def test_an_assistant_tool_call_counts_its_json() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    with_call = [{"role": "assistant", "content": None, "tool_calls": [call]}]
    without = [{"role": "assistant", "content": None}]
    assert TOKENS.count_messages(with_call) > TOKENS.count_messages(without)


def test_chat_tool_definitions_are_part_of_the_reserved_input() -> None:
    tools = [{"type": "function", "function": {"name": "f", "description": "d" * 2000, "parameters": {}}}]
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "tools": tools}
    assert worst(CHAT, body).input_tokens >= 2000


def test_anthropic_s_max_tokens_0_pre_warms_the_cache_and_reserves_no_output() -> None:
    messages = [{"role": "user", "content": "hi"}]
    warm = worst(MESSAGES, {"model": "m", "max_tokens": 0, "messages": messages})
    assert warm.output_tokens == 0 and warm.input_tokens > 0


@pytest.mark.parametrize(
    ("operation", "body", "code"),
    [
        (CHAT, {"max_completion_tokens": 0}, "integer_below_min_value"),  # an upstream may read 0 as "no limit"
        (CHAT, {"max_tokens": -5}, "integer_below_min_value"),
        (CHAT, {"max_tokens": 10, "n": 0}, "integer_below_min_value"),
        (CHAT, {"max_tokens": "10"}, "invalid_type"),
        (CHAT, {"max_output_tokens": True}, "invalid_type"),
        (CHAT, {"messages": "hello"}, "invalid_type"),
        (COMPLETIONS, {"prompt": "x", "max_tokens": 2.5}, "invalid_type"),
        (MESSAGES, {"max_tokens": -1, "messages": []}, "integer_below_min_value"),
        (MESSAGES, {"max_tokens": 0, "messages": [], "stream": True}, "invalid_value"),  # pre-warming is not streamed
        (MESSAGES, {"max_tokens": 5, "messages": {"role": "user"}}, "invalid_type"),
        (GEMINI_STREAM, {"generationConfig": {"maxOutputTokens": 0}}, "integer_below_min_value"),
        (GEMINI_STREAM, {"generationConfig": {"maxOutputTokens": 8, "candidateCount": 0}}, "integer_below_min_value"),
        (BY_PATH["/v1/images/generations"], {"prompt": "p", "n": 0}, "integer_below_min_value"),
    ],
)
def test_limits_a_reservation_would_misread_are_refused_before_forwarding(
    operation: Operation, body: dict[str, Any], code: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        worst(operation, {"model": "m", **body})
    assert (refused.value.status, refused.value.code) == (400, code)
