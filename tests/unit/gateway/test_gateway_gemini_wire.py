"""The Gemini wire format: exact usage (thoughts are output), SSE and JSON-array streams, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest

from farebox.core.pricing import Usage
from farebox.gateway.providers import gemini as wire

FixtureBytes = Callable[[str], bytes]
ByteSplits = Callable[[bytes], Iterator[list[bytes]]]

STREAM_USAGE = Usage(input_tokens=391, output_tokens=145, reasoning_tokens=102)
"""The recorded stream's last usageMetadata: 391 prompt, 43 candidates + 102 thoughts (total 536)."""


def collect(chunks: list[bytes]) -> wire.GeminiUsageCollector:
    collector = wire.GeminiUsageCollector()
    for chunk in chunks:
        collector.feed(chunk)
    collector.close()
    return collector


def test_generate_content_output_adds_thoughts(fixture_bytes: FixtureBytes) -> None:
    # candidatesTokenCount 418 excludes the 438 thoughts; totalTokenCount 890 = 34 + 418 + 438
    assert wire.usage_from_body(fixture_bytes("gemini_generate_content.json")) == Usage(
        input_tokens=34, output_tokens=856, reasoning_tokens=438
    )


def test_cached_content_and_tool_use_prompt_tokens() -> None:
    body = {
        "usageMetadata": {
            "promptTokenCount": 16000,
            "cachedContentTokenCount": 5200,
            "toolUsePromptTokenCount": 40,
            "candidatesTokenCount": 300,
            "totalTokenCount": 16340,
        }
    }
    assert wire.usage_from_body(body) == Usage(input_tokens=16040, output_tokens=300, cached_input_tokens=5200)


@pytest.mark.parametrize("body", [b"{}", b"oops", b'{"candidates": []}', b"[]"])
def test_no_usage_is_none(body: bytes) -> None:
    assert wire.usage_from_body(body) is None


def test_recorded_sse_stream(fixture_bytes: FixtureBytes, byte_splits: ByteSplits) -> None:
    stream = fixture_bytes("gemini_stream.sse")
    for chunks in byte_splits(stream):
        collector = collect(chunks)
        assert collector.usage == STREAM_USAGE
        assert collector.complete
    assert "Yesterday was 2025-11-10." in collector.text
    assert "Calculating Yesterday's Date" in collector.text  # thought summaries are output too
    assert '"name":"get_weather"' in collector.text


def test_lf_only_stream_gives_the_same_usage(fixture_bytes: FixtureBytes) -> None:
    assert collect([fixture_bytes("gemini_stream.sse").replace(b"\r\n", b"\n")]).usage == STREAM_USAGE


def test_stream_cut_short_has_the_last_cumulative_usage(fixture_bytes: FixtureBytes) -> None:
    stream = fixture_bytes("gemini_stream.sse")
    second_event_end = stream.index(b"\r\n\r\n", stream.index(b"\r\n\r\n") + 4) + 4
    collector = collect([stream[:second_event_end]])
    assert collector.usage == Usage(input_tokens=391, output_tokens=102, reasoning_tokens=102)
    assert not collector.complete


def test_json_array_stream_body(fixture_bytes: FixtureBytes) -> None:
    events = [line.removeprefix(b"data: ") for line in fixture_bytes("gemini_stream.sse").split(b"\r\n\r\n") if line]
    body = b"[" + b",\r\n".join(events) + b"]"
    assert wire.usage_from_body(body) == STREAM_USAGE
    assert wire.usage_from_body([orjson.loads(event) for event in events]) == STREAM_USAGE


def test_in_stream_error() -> None:
    error = {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
    assert collect([b"data: " + orjson.dumps({"error": error}) + b"\r\n\r\n"]).error == error


@pytest.mark.parametrize(
    ("status", "name"),
    [(400, "INVALID_ARGUMENT"), (401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED"), (404, "NOT_FOUND"),
     (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED"),
     (418, "UNKNOWN")],
)  # fmt: skip
def test_error_envelope(status: int, name: str) -> None:
    assert wire.error_body(status, "boom") == {"error": {"code": status, "message": "boom", "status": name}}


def test_estimate_input_tokens() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "hello world"}]}],
    }
    assert wire.estimate_input_tokens(body) == 5


def test_response_text_of_a_body_and_of_a_json_array_stream() -> None:
    def chunk(text: str) -> dict[str, object]:
        return {"candidates": [{"content": {"parts": [{"text": text}, {"functionCall": {"name": "f"}}]}}]}

    assert wire.response_text(orjson.dumps(chunk("The fare"))) == 'The fare{"name":"f"}'
    assert wire.response_text(orjson.dumps([chunk("a"), chunk("b")])) == 'a{"name":"f"}b{"name":"f"}'
    assert wire.response_text(b"not json") == ""
