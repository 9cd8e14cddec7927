"""The SSE relay holds back the end of a stream until its event is committed, and never sends it otherwise."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from starlette.types import Message

from farebox.gateway.providers.anthropic import AnthropicUsageCollector
from farebox.gateway.providers.openai import OpenAIUsageCollector, UsageChunkFilter
from farebox.gateway.streaming import StreamEnd, relay
from farebox.gateway.upstream import UpstreamDisconnected

pytestmark = pytest.mark.anyio

OPENAI_STREAM = [
    b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n',
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}\n\ndata: [DONE]\n\n',
]


class FakeResponse:
    """Yields chunks, then ends (or fails with `error`)."""

    def __init__(self, chunks: list[bytes], *, error: Exception | None = None, pause: float = 0.0) -> None:
        self._chunks = chunks
        self._error = error
        self._pause = pause

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            await anyio.sleep(self._pause)
            yield chunk
        if self._error is not None:
            raise self._error


class Client:
    def __init__(self, *, disconnect_after: float | None = None) -> None:
        self.sent: list[bytes] = []
        self.ended = False
        self._disconnect_after = disconnect_after

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            self.sent.append(message.get("body", b""))
            self.ended = not message.get("more_body", False)

    async def receive(self) -> Message:
        if self._disconnect_after is None:
            await anyio.sleep_forever()
        await anyio.sleep(self._disconnect_after)
        return {"type": "http.disconnect"}

    @property
    def body(self) -> bytes:
        return b"".join(self.sent)


async def run(response: FakeResponse, client: Client, collector: Any, *, chunk_filter: Any = None, ok: bool = True):
    seen: dict[str, Any] = {}

    async def finish(end: StreamEnd) -> bool:
        seen["body_at_finish"] = client.body
        seen["end"] = end
        seen["usage"] = collector.usage
        return ok

    await relay(
        response,  # type: ignore[arg-type]  # a fake with the one method the relay uses
        start={"type": "http.response.start", "status": 200, "headers": []},
        receive=client.receive,
        send=client.send,
        collector=collector,
        chunk_filter=chunk_filter,
        started=time.perf_counter(),
        finish=finish,
    )
    return seen


async def test_the_final_event_goes_out_only_after_finish() -> None:
    client = Client()
    seen = await run(FakeResponse(OPENAI_STREAM), client, OpenAIUsageCollector())
    assert b"[DONE]" not in seen["body_at_finish"] and b"Hi" in seen["body_at_finish"]
    assert client.body == b"".join(OPENAI_STREAM) and client.ended
    assert seen["usage"].input_tokens == 5 and seen["end"].upstream_error is None


async def test_the_usage_chunk_is_dropped_for_a_client_that_did_not_ask() -> None:
    client = Client()
    await run(FakeResponse(OPENAI_STREAM), client, OpenAIUsageCollector(), chunk_filter=UsageChunkFilter())
    assert b'"usage"' not in client.body and client.body.endswith(b"data: [DONE]\n\n")


async def test_a_failed_commit_never_sends_the_end() -> None:
    client = Client()
    await run(FakeResponse(OPENAI_STREAM), client, OpenAIUsageCollector(), ok=False)
    assert b"[DONE]" not in client.body and client.ended


async def test_anthropic_message_stop_is_held_back() -> None:
    chunks = [
        b'event: message_start\ndata: {"type":"message_start",'
        b'"message":{"usage":{"input_tokens":3,"output_tokens":1}}}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":2}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]
    client = Client()
    seen = await run(FakeResponse(chunks), client, AnthropicUsageCollector())
    assert b"message_stop" not in seen["body_at_finish"] and client.body.endswith(chunks[-1])


async def test_an_upstream_drop_and_a_client_disconnect_still_finish() -> None:
    dropped = await run(
        FakeResponse(OPENAI_STREAM[:1], error=UpstreamDisconnected("reset")), Client(), OpenAIUsageCollector()
    )
    assert dropped["end"].upstream_error == "upstream_disconnected"
    clean_end = await run(FakeResponse(OPENAI_STREAM[:2]), Client(), OpenAIUsageCollector())
    assert clean_end["end"].upstream_error == "upstream_disconnected"
    client = Client(disconnect_after=0.02)
    gone = await run(FakeResponse(OPENAI_STREAM, pause=0.05), client, OpenAIUsageCollector())
    assert gone["end"].client_gone and b"[DONE]" not in client.body
