"""OpenAI requests and the usage chunk: asking for stream usage, dropping it again, speech and input estimates."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.pricing import Usage
from farebox.gateway.providers import openai as wire
from farebox.gateway.tokens import Tokenizer

TEXT_CHUNK = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
USAGE_CHUNK = {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 3}}


def event(document: dict[str, Any], line_end: bytes) -> bytes:
    return b"data: " + orjson.dumps(document) + line_end + line_end


def filtered(chunks: list[bytes]) -> bytes:
    chunk_filter = wire.UsageChunkFilter()
    return b"".join(chunk_filter.feed(chunk) for chunk in chunks) + chunk_filter.flush()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    offsets = sorted({min(max(point, 0), len(data)) for point in points} | {0, len(data)})
    return [data[start:end] for start, end in zip(offsets, offsets[1:], strict=False) if end > start]


@given(
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.lists(st.sampled_from(["text", "usage", "comment", "done"]), max_size=8),
    st.lists(st.integers(0, 2000), max_size=10),
)
def test_the_filter_drops_exactly_the_usage_chunks_whatever_the_chunking(
    line_end: bytes, kinds: list[str], points: list[int]
) -> None:
    blocks = {
        "text": event(TEXT_CHUNK, line_end),
        "usage": event(USAGE_CHUNK, line_end),
        "comment": b": keep-alive" + line_end + line_end,
        "done": b"data: [DONE]" + line_end + line_end,
    }
    if line_end == b"\r":
        kinds = [*kinds, "done"]  # a CR-only stream's last blank line is only known at its end: see below
    stream = b"".join(blocks[kind] for kind in kinds)
    expected = b"".join(blocks[kind] for kind in kinds if kind != "usage")
    assert filtered(cut(stream, points)) == expected


def test_the_filter_holds_only_an_unfinished_event() -> None:
    chunk_filter = wire.UsageChunkFilter()
    text = event(TEXT_CHUNK, b"\n")
    assert chunk_filter.feed(text[:10]) == b""
    assert chunk_filter.feed(text[10:]) == text
    usage = event(USAGE_CHUNK, b"\n")
    assert chunk_filter.feed(usage) == b""
    assert chunk_filter.flush() == b""


def test_a_trailing_cr_waits_for_the_next_byte() -> None:
    # `...\r\n\r` may be the start of `\r\n`: the event is judged once the next byte shows the blank line.
    chunk_filter = wire.UsageChunkFilter()
    text = event(TEXT_CHUNK, b"\r\n")
    assert chunk_filter.feed(text[:-1]) == b""
    assert chunk_filter.feed(text[-1:]) == text


def test_a_usage_chunk_ending_a_cr_only_stream_is_dropped() -> None:
    assert filtered([event(TEXT_CHUNK, b"\r") + event(USAGE_CHUNK, b"\r")]) == event(TEXT_CHUNK, b"\r")


def test_an_unterminated_usage_chunk_is_flushed_as_it_came() -> None:
    # Without its blank line the event is not known complete: the filter never guesses, it forwards.
    chunk_filter = wire.UsageChunkFilter()
    tail = b"data: " + orjson.dumps(USAGE_CHUNK)
    assert chunk_filter.feed(tail) == b""
    assert chunk_filter.flush() == tail
    assert chunk_filter.flush() == b""


@pytest.mark.parametrize(
    ("body", "expected_options", "asked"),
    [
        ({"stream": True}, {"include_usage": True}, False),
        ({"stream": True, "stream_options": None}, {"include_usage": True}, False),
        ({"stream": True, "stream_options": {"include_usage": False}}, {"include_usage": True}, False),
        ({"stream": True, "stream_options": {"include_usage": "yes"}}, {"include_usage": True}, False),
        ({"stream": True, "stream_options": "bad"}, {"include_usage": True}, False),
        ({"stream": True, "stream_options": {"include_usage": True}}, {"include_usage": True}, True),
        (
            {"stream": True, "stream_options": {"include_usage": True, "include_obfuscation": False}},
            {"include_usage": True, "include_obfuscation": False},
            True,
        ),
    ],
)
def test_with_stream_usage(body: dict[str, Any], expected_options: dict[str, Any], asked: bool) -> None:
    original = orjson.dumps(body)
    updated, client_asked = wire.with_stream_usage(body)
    assert client_asked is asked
    assert updated["stream_options"] == expected_options
    assert {key: value for key, value in updated.items() if key != "stream_options"} == {
        key: value for key, value in body.items() if key != "stream_options"
    }
    assert orjson.dumps(body) == original  # the client's document is never changed in place


@pytest.mark.parametrize(
    ("request_body", "characters"),
    [
        (b'{"model": "tts-1", "input": "Hello", "voice": "alloy"}', 5),
        (b'{"input": "caf\\u00e9 \\ud83d\\ude00"}', 6),  # characters, not bytes or UTF-16 units
        (b'{"input": ""}', 0),
        (b'{"input": 42}', 0),
        (b'{"input": ["a", "b"]}', 0),
        (b"not json", 0),
        (b"[]", 0),
    ],
)
def test_speech_usage(request_body: bytes, characters: int) -> None:
    assert wire.speech_usage(request_body) == Usage(characters=characters)


TOKENS = Tokenizer()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": "gpt-4o", "prompt": "hello world"}, 2),
        ({"model": "gpt-4o", "prompt": ["hello world", "hello world"]}, 4),
        ({"model": "gpt-4o", "prompt": [[1, 2, 3], [4, 5]]}, 5),  # batches of token ids
        ({"model": "gpt-4o", "input": [1, 2, 3, 4]}, 4),
        ({"model": "gpt-4o", "input": []}, 0),
        ({"model": "gpt-4o", "input": None}, 0),
        ({"model": "gpt-4o", "input": 12}, 0),
        ({"model": "gpt-4o", "instructions": "hello world", "input": "hello world"}, 4),
        ({"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hello world"}]}]},
         2),
        ({"model": "gpt-4o", "input": [{"role": "user", "content": "hello world"}, "hello world"]}, 4),
        ({"model": "gpt-4o"}, 0),
        ({"model": 7, "prompt": "hello world"}, 2),  # a model that is not a name counts with o200k
    ],
)  # fmt: skip
def test_estimate_input_tokens_of_prompts_and_inputs(body: dict[str, Any], expected: int) -> None:
    assert wire.estimate_input_tokens(body, tokenizer=TOKENS) == expected


def test_messages_win_over_prompt_and_the_model_picks_the_vocabulary() -> None:
    messages = [{"role": "user", "content": "我是助手。"}]
    body = {"model": "gpt-4o", "messages": messages, "prompt": "ignored " * 50}
    assert wire.estimate_input_tokens(body) == TOKENS.count_messages(messages, model="gpt-4o")
    older = {"model": "gpt-4", "messages": messages}
    assert wire.estimate_input_tokens(older) == TOKENS.count_messages(messages, model="gpt-4")
    assert wire.estimate_input_tokens(older) != wire.estimate_input_tokens(body)
