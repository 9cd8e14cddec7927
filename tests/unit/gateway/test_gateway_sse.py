"""The incremental SSE decoder: any split, any line end, the SSE field rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from farebox.gateway.providers.sse import SSEDecoder, SSEEvent

ByteSplits = Callable[[bytes], Iterator[list[bytes]]]

STREAM = (
    b": keep-alive comment\n"
    b"event: message_start\n"
    b'data: {"a": 1}\n'
    b"\n"
    b"data: line one\n"
    b"data:line two\n"
    b"id: 7\n"
    b"retry: 100\n"
    b"\n"
    b"event: ignored-without-data\n"
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)
EVENTS = [
    SSEEvent("message_start", b'{"a": 1}'),
    SSEEvent(None, b"line one\nline two"),
    SSEEvent(None, b"[DONE]"),
]


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_any_split_and_line_end(line_end: bytes, byte_splits: ByteSplits) -> None:
    stream = STREAM.replace(b"\n", line_end)
    for chunks in byte_splits(stream):
        assert decode(chunks) == EVENTS


def test_events_are_returned_as_soon_as_they_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b") == [SSEEvent(None, b"a")]
    assert decoder.close() == [SSEEvent(None, b"b")]
    assert decoder.close() == []


def test_empty_data_field_is_an_event() -> None:
    assert decode([b"data\n\n"]) == [SSEEvent(None, b"")]
