"""How a relayed stream ends: cancellation, disconnects, unterminated tails, held-back endings and timing.

Every wait here is on an event the test controls; nothing sleeps.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from starlette.types import Message

from farebox.gateway.providers.gemini import GeminiUsageCollector
from farebox.gateway.providers.openai import OpenAIUsageCollector, UsageChunkFilter
from farebox.gateway.providers.sse import UsageCollector
from farebox.gateway.streaming import StreamEnd, relay

pytestmark = pytest.mark.anyio

TEXT = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}\n\n'
DONE = b"data: [DONE]\n\n"


class Upstream:
    """Yields its chunks, then either ends or waits until the relay is cancelled."""

    def __init__(self, chunks: list[bytes], *, then_hang: bool = False) -> None:
        self._chunks = chunks
        self._then_hang = then_hang

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        if self._then_hang:
            await anyio.Event().wait()


class Client:
    """Records what the relay sends; `first_body` is set once any body bytes arrived."""

    def __init__(self, incoming: list[Message] | None = None, *, leave_after_first_body: bool = False) -> None:
        self.messages: list[Message] = []
        self.first_body = anyio.Event()
        self._incoming = list(incoming or [])
        self._leave = leave_after_first_body

    async def send(self, message: Message) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            self.first_body.set()

    async def receive(self) -> Message:
        if self._incoming:
            return self._incoming.pop(0)
        if self._leave:
            await self.first_body.wait()
            return {"type": "http.disconnect"}
        await anyio.Event().wait()
        raise AssertionError("unreachable")

    @property
    def bodies(self) -> list[Message]:
        return [message for message in self.messages if message["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(message.get("body", b"") for message in self.bodies)

    @property
    def ended(self) -> bool:
        return bool(self.bodies) and not self.bodies[-1].get("more_body", False)


async def run(
    upstream: Upstream,
    client: Client,
    collector: UsageCollector,
    *,
    chunk_filter: UsageChunkFilter | None = None,
    release: bool = True,
    started: float | None = None,
) -> dict[str, Any]:
    seen: dict[str, Any] = {"finished": 0}

    async def finish(end: StreamEnd) -> bool:
        seen["finished"] += 1
        seen["end"] = end
        seen["body_at_finish"] = client.body
        return release

    await relay(
        upstream,  # type: ignore[arg-type]  # a stand-in with the one method the relay reads
        start={"type": "http.response.start", "status": 200, "headers": []},
        receive=client.receive,
        send=client.send,
        collector=collector,
        chunk_filter=chunk_filter,
        started=time.perf_counter() if started is None else started,
        finish=finish,
    )
    return seen


async def test_a_cancelled_relay_records_its_event_once_and_sends_no_ending() -> None:
    client = Client()
    ends: list[StreamEnd] = []

    async def finish(end: StreamEnd) -> bool:
        ends.append(end)
        return True

    async with anyio.create_task_group() as group:

        async def relay_it() -> None:
            await relay(
                Upstream([TEXT], then_hang=True),  # type: ignore[arg-type]
                start={"type": "http.response.start", "status": 200, "headers": []},
                receive=client.receive,
                send=client.send,
                collector=OpenAIUsageCollector(),
                chunk_filter=None,
                started=time.perf_counter(),
                finish=finish,
            )

        group.start_soon(relay_it)
        await client.first_body.wait()
        group.cancel_scope.cancel()  # a shutdown past its grace period
    assert len(ends) == 1
    assert ends[0].upstream_error == "cancelled" and not ends[0].client_gone
    assert client.body == TEXT and not client.ended  # the client gets nothing more, not even the body's end


async def test_a_client_that_leaves_ends_the_relay_at_once() -> None:
    client = Client(leave_after_first_body=True)
    seen = await run(Upstream([TEXT], then_hang=True), client, OpenAIUsageCollector())
    assert seen["finished"] == 1
    assert seen["end"].client_gone
    assert client.body == TEXT


async def test_other_client_messages_are_not_a_disconnect() -> None:
    incoming: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}] * 3
    client = Client(incoming)
    seen = await run(Upstream([TEXT, USAGE, DONE]), client, OpenAIUsageCollector())
    assert not seen["end"].client_gone and seen["end"].upstream_error is None
    assert client.body == TEXT + USAGE + DONE and client.ended


async def test_an_unterminated_tail_is_flushed_through_the_filter() -> None:
    tail = b'data: {"choices":[{"index":0,"delta":{"content":"cut"}}]}'
    client = Client()
    seen = await run(Upstream([TEXT, tail]), client, OpenAIUsageCollector(), chunk_filter=UsageChunkFilter())
    assert client.body == TEXT + tail and client.ended
    assert seen["end"].upstream_error == "upstream_disconnected"  # no [DONE]: the stream did not finish


async def test_an_event_split_across_chunks_sends_no_empty_bodies() -> None:
    pieces = [TEXT[:7], TEXT[7:20], TEXT[20:], USAGE[:5], USAGE[5:], DONE]
    client = Client()
    await run(Upstream(pieces), client, OpenAIUsageCollector(), chunk_filter=UsageChunkFilter())
    sent = [message["body"] for message in client.bodies[:-1]]
    assert sent == [TEXT]  # whole events only; the usage chunk dropped; [DONE] held for the final message
    assert client.bodies[-1] == {"type": "http.response.body", "body": DONE, "more_body": False}


async def test_everything_after_the_end_marker_is_held_and_dropped_when_the_commit_fails() -> None:
    finished = b'data: {"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP"}]}\r\n\r\n'
    extra = b'data: {"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}\r\n\r\n'
    first = b'data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}]}\r\n\r\n'
    client = Client()
    seen = await run(Upstream([first, finished, extra]), client, GeminiUsageCollector(), release=False)
    assert seen["body_at_finish"] == first
    assert client.body == first and client.ended  # neither the finishing chunk nor anything after it
    released = Client()
    await run(Upstream([first, finished, extra]), released, GeminiUsageCollector())
    assert released.body == first + finished + extra


async def test_time_to_first_byte_is_measured_from_the_request_start() -> None:
    seen = await run(Upstream([TEXT, DONE]), Client(), OpenAIUsageCollector(), started=time.perf_counter() - 2.0)
    assert 2000 <= seen["end"].ttft_ms < 60_000
    empty = await run(Upstream([]), Client(), OpenAIUsageCollector())
    assert empty["end"].ttft_ms is None
    assert empty["end"].upstream_error == "upstream_disconnected"
