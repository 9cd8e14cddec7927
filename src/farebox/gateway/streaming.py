"""The SSE relay: upstream chunks go to the client as they arrive, except the one that ends the stream.

Every chunk is shown to the provider's usage collector, then sent on unchanged (for an OpenAI client that
did not ask for stream usage, through `UsageChunkFilter`, which drops only the usage-only chunk farebox
asked for on its behalf). Once the collector has seen the provider's end-of-stream marker (`data: [DONE]`,
Anthropic's `message_stop`, Gemini's `finishReason`), the bytes that carried it, and anything after, are
held back: the relay calls `finish()`, which commits the usage event, and only then sends them. A client
therefore never sees the end of a stream whose event is not in the ledger.

A disconnect of the client is noticed while the relay waits for the upstream (an ASGI `http.disconnect`),
and ends the relay at once; an upstream that drops or stalls mid-stream ends it too; so does a shutdown
past its grace period, which cancels the request. In every case `finish()` still runs (shielded from
cancellation), with what was seen, so the event is recorded, estimated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from starlette.types import Message, Receive, Send

from farebox.gateway.providers.openai import UsageChunkFilter
from farebox.gateway.providers.sse import UsageCollector
from farebox.gateway.upstream import UpstreamError, UpstreamResponse

__all__ = ["StreamEnd", "relay"]


@dataclass(slots=True)
class StreamEnd:
    """How a relayed stream ended; filled in by the relay, read by `finish()`."""

    ttft_ms: int | None = None
    """Milliseconds from the request's start to the first upstream bytes."""
    client_gone: bool = False
    upstream_error: str | None = None
    """`upstream_timeout` or `upstream_disconnected` when the upstream failed mid-stream."""


async def relay(
    response: UpstreamResponse,
    *,
    start: Message,
    receive: Receive,
    send: Send,
    collector: UsageCollector,
    chunk_filter: UsageChunkFilter | None,
    started: float,
    finish: Callable[[StreamEnd], Awaitable[bool]],
) -> None:
    """Relay an upstream SSE response to the client, committing its event before the final event goes out.

    Args:
        response: the upstream response, headers received, body unread.
        start: the `http.response.start` message to send first.
        receive: the client's ASGI receive (to notice a disconnect).
        send: the client's ASGI send.
        collector: observes every upstream chunk for usage and text.
        chunk_filter: drops the usage-only chunk, for clients that did not ask for it.
        started: `time.perf_counter()` at the request's start.
        finish: records the event; returns whether the held-back end of the stream may be sent.
    """
    end = StreamEnd()
    held: list[bytes] = []
    await send(start)
    # A disconnect cancels this task through a bare asyncio task and callback, not an anyio task group:
    # per request, the group's cancellation machinery cost more than the rest of the relay's bookkeeping.
    task = asyncio.current_task()
    assert task is not None
    pumping = True

    def on_disconnect(watcher: asyncio.Future[None]) -> None:
        if pumping and not watcher.cancelled() and watcher.exception() is None:
            end.client_gone = True
            task.cancel()

    watcher = asyncio.ensure_future(_disconnected(receive))
    watcher.add_done_callback(on_disconnect)
    try:
        await _pump(
            response, send=send, collector=collector, chunk_filter=chunk_filter, started=started, end=end, held=held
        )
    except asyncio.CancelledError:
        if not end.client_gone or task.uncancel() > 0:  # cancelled from outside: a shutdown past its grace
            end.upstream_error = end.upstream_error or "cancelled"
            with anyio.CancelScope(shield=True):
                await finish(end)  # what was streamed so far, estimated; the client gets nothing more
            raise
    finally:
        pumping = False
        watcher.cancel()
    with anyio.CancelScope(shield=True):
        release = await finish(end)
        tail = b"".join(held) if release and not end.client_gone else b""
        await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _disconnected(receive: Receive) -> None:
    """Return once the client has disconnected."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _pump(
    response: UpstreamResponse,
    *,
    send: Send,
    collector: UsageCollector,
    chunk_filter: UsageChunkFilter | None,
    started: float,
    end: StreamEnd,
    held: list[bytes],
) -> None:
    try:
        async for chunk in response.chunks():
            if end.ttft_ms is None:
                end.ttft_ms = round((time.perf_counter() - started) * 1000)
            collector.feed(chunk)
            out = chunk_filter.feed(chunk) if chunk_filter is not None else chunk
            if held or collector.complete:
                held.append(out)
            elif out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
        collector.close()
    except UpstreamError as exc:
        end.upstream_error = exc.error_type
    if chunk_filter is not None:
        rest = chunk_filter.flush()
        if held or collector.complete:
            held.append(rest)
        elif rest:
            await send({"type": "http.response.body", "body": rest, "more_body": True})
    if end.upstream_error is None and not collector.complete:
        end.upstream_error = "upstream_disconnected"
