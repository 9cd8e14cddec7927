"""Incremental Server-Sent Events decoding, for observing upstream streams as their bytes arrive.

`SSEDecoder.feed()` takes chunks exactly as the network delivers them — split anywhere, mid-line or
mid-event, with `\\n`, `\\r\\n` or `\\r` line ends (Gemini sends `\\r\\n`) — and returns the events that
the chunk completed. It keeps only the unfinished tail; it never changes what the relay sends on.

`UsageCollector` is what every provider's stream collector offers the relay.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from farebox.core.pricing import Usage
from farebox.gateway.providers.payload import JSONObject, as_object, load_json

__all__ = ["SSEDecoder", "SSEEvent", "UsageCollector"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its `event:` name (None when absent) and its `data:` lines joined by `\\n`."""

    event: str | None
    data: bytes


_DEFERRED_BYTES = 65_536
"""How many bytes of not-yet-parsed events a collector keeps before it parses them for their text."""


class UsageCollector(ABC):
    """Watches one upstream stream and reports the usage the provider announced in it.

    The shared part of every provider's stream collector: SSE decoding, the generated text kept for
    estimates, the end-of-stream flag and an in-stream error. A provider's subclass reads each
    decoded JSON event in `_observe` and reports its usage through `usage`.

    An event that `_text_only` says can carry nothing but text is kept as bytes and parsed only if the
    text is asked for (a stream that ends without usage), or once the kept bytes pass `_DEFERRED_BYTES`:
    most streams report their usage, and most of their events are text deltas.
    """

    __slots__ = ("_decoder", "_deferred_bytes", "_pieces", "complete", "error")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._pieces: list[str | bytes] = []
        """Text taken in, and, in order among it, the data of events not parsed yet."""
        self._deferred_bytes = 0
        self.complete = False
        """Whether the provider's own end-of-stream marker was seen (so the usage is final)."""
        self.error: JSONObject | None = None
        """The `error` object of an in-stream error event, if one was sent."""

    @property
    @abstractmethod
    def usage(self) -> Usage | None:
        """The usage the provider reported so far, or `None` if it reported none."""

    @property
    def text(self) -> str:
        """The generated text seen so far (content, reasoning and tool-call arguments), for estimates."""
        self._parse_deferred()
        return "".join(piece for piece in self._pieces if isinstance(piece, str))

    def feed(self, chunk: bytes) -> None:
        """Observe the next chunk of the upstream body, exactly as received."""
        self._take_events(self._decoder.feed(chunk))

    def close(self) -> None:
        """The upstream body ended: take in a last event that lacked its closing blank line."""
        self._take_events(self._decoder.close())

    def _take_events(self, events: list[SSEEvent]) -> None:
        for event in events:
            data = event.data
            if self._take_marker(data):
                continue
            if self._text_only(data):
                self._pieces.append(data)
                self._deferred_bytes += len(data)
                if self._deferred_bytes > _DEFERRED_BYTES:
                    self._parse_deferred()
                continue
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        document = as_object(load_json(data))
        if document is not None:
            self._observe(document)

    def _parse_deferred(self) -> None:
        if not self._deferred_bytes:
            return
        pieces, self._pieces, self._deferred_bytes = self._pieces, [], 0
        for piece in pieces:
            if isinstance(piece, bytes):
                self._parse(piece)  # its text goes where the event came
            else:
                self._pieces.append(piece)

    def _take_marker(self, data: bytes) -> bool:
        """Handle a non-JSON event (OpenAI's `[DONE]`); True if it was one."""
        return False

    def _text_only(self, data: bytes) -> bool:
        """Whether an event's data can be taken in later: it can hold text, but no usage, error or end."""
        return False

    @abstractmethod
    def _observe(self, document: JSONObject) -> None:
        """Take in one decoded JSON event."""


class SSEDecoder:
    """Splits a byte stream into SSE events, holding back only an unfinished line or event."""

    __slots__ = ("_data", "_event", "_has_data", "_pending", "_skip_lf")

    def __init__(self) -> None:
        self._pending = b""
        self._skip_lf = False
        self._event: str | None = None
        self._data: list[bytes] = []
        self._has_data = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode the next chunk; return the events it completed, in order."""
        if not chunk:  # nothing came: a `\r` at the end of the last chunk may still be half of a `\r\n`
            return []
        if self._skip_lf and chunk[:1] == b"\n":
            # The previous chunk ended in `\r`: this `\n` finishes that same `\r\n` line end.
            chunk = chunk[1:]
        self._skip_lf = False
        if not chunk:
            return []
        buffer = self._pending + chunk if self._pending else chunk
        lines = buffer.splitlines(keepends=True)
        last = lines[-1]
        if last.endswith((b"\n", b"\r")):
            self._pending = b""
            self._skip_lf = last.endswith(b"\r")
        else:
            self._pending = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            self._line(line.rstrip(b"\r\n"), events)
        return events

    def close(self) -> list[SSEEvent]:
        """The upstream ended: dispatch an event left unterminated (no closing blank line), if any."""
        events: list[SSEEvent] = []
        if self._pending:
            self._line(self._pending.rstrip(b"\r\n"), events)
            self._pending = b""
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._has_data:
                events.append(SSEEvent(self._event, b"\n".join(self._data)))
            self._event = None
            self._data = []
            self._has_data = False
            return
        if line[:1] == b":":
            return
        field, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            self._data.append(value)
            self._has_data = True
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")
