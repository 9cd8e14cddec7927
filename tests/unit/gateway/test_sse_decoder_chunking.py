"""The SSE decoder: the same events whatever the chunk boundaries, and the SSE field rules line by line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.gateway.providers.sse import SSEDecoder, SSEEvent

LINE_ENDS = (b"\n", b"\r\n", b"\r")


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """`data` cut at the given offsets (sorted, deduplicated, clamped into range); every piece non-empty."""
    offsets = sorted({min(max(point, 0), len(data)) for point in points} | {0, len(data)})
    return [data[start:end] for start, end in zip(offsets, offsets[1:], strict=False) if end > start]


# Event names and data values never contain a line end or start with a space or colon (the SSE grammar
# would read those differently); the data may contain colons, JSON, unicode.
_value = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20).filter(
    lambda text: not text.startswith((" ", ":"))
)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    """A whole SSE stream in one line-end style, with the events a correct decoder must give for it."""
    line_end = draw(st.sampled_from(LINE_ENDS))
    lines: list[bytes] = []
    events: list[SSEEvent] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            lines.append(b": comment " + draw(_value).encode())
        name = draw(st.none() | _value.filter(bool))
        if name is not None:
            lines.append(b"event: " + name.encode())
        data = [draw(_value).encode() for _ in range(draw(st.integers(0, 3)))]
        lines.extend(b"data: " + value for value in data)
        if draw(st.booleans()):
            lines.append(b"id: " + str(draw(st.integers(0, 99))).encode())
        lines.append(b"")
        if data:
            events.append(SSEEvent(name, b"\n".join(data)))
    return b"".join(line + line_end for line in lines), events


@given(streams(), st.lists(st.integers(0, 400), max_size=12))
def test_any_chunking_of_any_stream_gives_the_same_events(
    stream: tuple[bytes, list[SSEEvent]], points: list[int]
) -> None:
    data, expected = stream
    assert decode([data]) == expected
    assert decode(cut(data, points)) == expected


@given(streams())
def test_one_byte_at_a_time_gives_the_same_events(stream: tuple[bytes, list[SSEEvent]]) -> None:
    data, expected = stream
    assert decode([data[i : i + 1] for i in range(len(data))]) == expected


@given(streams(), st.lists(st.integers(0, 400), max_size=8))
def test_events_come_out_no_later_than_their_blank_line(
    stream: tuple[bytes, list[SSEEvent]], points: list[int]
) -> None:
    data, expected = stream
    decoder = SSEDecoder()
    seen: list[SSEEvent] = []
    consumed = b""
    for chunk in cut(data, points):
        seen += decoder.feed(chunk)
        consumed += chunk
        # Every event whose blank line has arrived is out, exactly as if the bytes so far came at once.
        assert seen == SSEDecoder().feed(consumed)
    assert seen + decoder.close() == expected


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b"data:no-space\n\n", [SSEEvent(None, b"no-space")]),
        (b"data:  two-spaces\n\n", [SSEEvent(None, b" two-spaces")]),  # only one leading space is removed
        (b"data: a: b: c\n\n", [SSEEvent(None, b"a: b: c")]),  # colons in the value are kept
        (b'data: {"k": 1}\n\n', [SSEEvent(None, b'{"k": 1}')]),
        (b"data\n\n", [SSEEvent(None, b"")]),  # a bare field name is the field with an empty value
        (b"data:\ndata:\n\n", [SSEEvent(None, b"\n")]),
        (b"event: ping\n\n", []),  # no data: nothing is dispatched
        (b"event: a\nevent: b\ndata: x\n\n", [SSEEvent("b", b"x")]),  # the last event name wins
        (b"event: a\n\ndata: x\n\n", [SSEEvent(None, b"x")]),  # the name is reset by a blank line
        (b"event: done\ndata: 1\n\ndata: 2\n\n", [SSEEvent("done", b"1"), SSEEvent(None, b"2")]),
        (b"Data: upper\n\n", []),  # field names are case-sensitive
        (b"retry: 10\nid: 5\nfoo: bar\n\n", []),  # other fields are ignored
        (b":data: commented out\n\n", []),
        (b": only a keep-alive\n\n: another\n\n", []),
        (b"data: x\n\n\n\n\ndata: y\n\n", [SSEEvent(None, b"x"), SSEEvent(None, b"y")]),
        (b"event: caf\xc3\xa9\ndata: 1\n\n", [SSEEvent("café", b"1")]),
        (b"event: \xff\ndata: 1\n\n", [SSEEvent("\ufffd", b"1")]),  # undecodable names do not raise
        (b"data: \xff\xfe raw\n\n", [SSEEvent(None, b"\xff\xfe raw")]),  # data stays bytes, untouched
        (b"data: a\r\ndata: b\rdata: c\n\r\n", [SSEEvent(None, b"a\nb\nc")]),  # mixed line ends
    ],
)
def test_field_rules(stream: bytes, expected: list[SSEEvent]) -> None:
    assert decode([stream]) == expected


@pytest.mark.parametrize("line_end", LINE_ENDS, ids=["lf", "crlf", "cr"])
def test_close_dispatches_an_event_missing_its_blank_line(line_end: bytes) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: last" + line_end + b"data: tail" + line_end) == []
    assert decoder.close() == [SSEEvent("last", b"tail")]
    assert decoder.close() == []


def test_close_dispatches_a_last_line_missing_its_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: complete\n\ndata: unfinished") == [SSEEvent(None, b"complete")]
    assert decoder.close() == [SSEEvent(None, b"unfinished")]


def test_close_without_data_dispatches_nothing() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"event: orphan\n: comment")
    assert decoder.close() == []


def test_a_cr_at_a_chunk_end_followed_by_lf_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # `\n` completes `\r\n`; a second line end would have been a blank line, dispatching the event.
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: b\r\n\r\n") == [SSEEvent(None, b"a\nb")]


def test_a_cr_then_a_new_line_is_two_line_ends_only_without_lf() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [SSEEvent(None, b"a")]


def test_the_decoder_keeps_only_the_unfinished_tail() -> None:
    decoder = SSEDecoder()
    many = b"".join(b"data: %d\n\n" % i for i in range(1000))
    assert len(decoder.feed(many + b"data: par")) == 1000
    # What is still held is the unfinished line, not the 1000 dispatched events.
    assert decoder.close() == [SSEEvent(None, b"par")]


def test_an_empty_chunk_changes_nothing() -> None:
    assert decode([b"data: a\r", b"", b"\ndata: b\r\n\r\n"]) == decode([b"data: a\r\ndata: b\r\n\r\n"])
