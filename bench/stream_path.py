"""Per-stream cost of farebox's own streaming bookkeeping, in-process: prints figures, asserts nothing.

    .venv/bin/python bench/stream_path.py [--streams 5000] [--rounds 5]

- `collector`: feeding a 22-chunk OpenAI chat stream (20 content chunks, a finish chunk, a usage chunk,
  `[DONE]`; every chunk carries `"usage": null`, as OpenAI sends with `include_usage`) to
  `OpenAIUsageCollector`, one chunk at a time, and reading its usage.
- `relay`: `relay()` on the same stream with a client that never disconnects, a no-op send and a finish
  that commits nothing: the relay's own cost (disconnect watcher, hold-back of the end, the collector).

Each figure is the best of `--rounds` rounds of `--streams` streams, on uvloop. The proxy benchmark
(`bench/proxy.py`) measures whole requests; this one isolates a part whose changes are smaller than that
benchmark's run-to-run noise on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import uvloop
from starlette.types import Message

from farebox.gateway.providers.openai import OpenAIUsageCollector
from farebox.gateway.streaming import StreamEnd, relay


def openai_stream() -> list[bytes]:
    """The chunks of a 20-token OpenAI chat stream with usage, one SSE event per chunk."""

    def event(choices: list[object], usage: object = None) -> bytes:
        chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": choices}
        return b"data: " + orjson.dumps(chunk | {"usage": usage}) + b"\n\n"

    chunks = [event([{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]) for i in range(20)]
    chunks.append(event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    chunks.append(event([], {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}))
    chunks.append(b"data: [DONE]\n\n")
    return chunks


class _Response:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            await asyncio.sleep(0)  # each chunk arrives on a later turn of the loop, as from a socket
            yield chunk


class _Client:
    def __init__(self) -> None:
        self._gone = asyncio.Event()

    async def send(self, message: Message) -> None:
        pass

    async def receive(self) -> Message:
        await self._gone.wait()
        return {"type": "http.disconnect"}


async def _committed(end: StreamEnd) -> bool:
    return True


def best_of(rounds: int, streams: int, run: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(streams):
            run()
        best = min(best, (time.perf_counter() - started) / streams)
    return best * 1e6


async def best_of_async(rounds: int, streams: int, run: Callable[[], Awaitable[None]]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(streams):
            await run()
        best = min(best, (time.perf_counter() - started) / streams)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=5000, help="streams per round (default 5,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best is printed (default 5)")
    args = parser.parse_args()
    chunks = openai_stream()

    def collect() -> None:
        collector = OpenAIUsageCollector()
        for chunk in chunks:
            collector.feed(chunk)
        collector.close()
        assert collector.usage is not None and collector.complete

    async def relay_one() -> None:
        client = _Client()
        await relay(
            _Response(chunks),  # type: ignore[arg-type]  # the one method the relay uses
            start={"type": "http.response.start", "status": 200, "headers": []},
            receive=client.receive,
            send=client.send,
            collector=OpenAIUsageCollector(),
            chunk_filter=None,
            started=time.perf_counter(),
            finish=_committed,
        )

    print(f"farebox stream path: {len(chunks)} chunks per stream, best of {args.rounds} x {args.streams:,} streams")
    print(f"collector  {best_of(args.rounds, args.streams, collect):7.1f} µs per stream")
    relay_us = uvloop.run(best_of_async(args.rounds, args.streams, relay_one))
    print(f"relay      {relay_us:7.1f} µs per stream (collector included)")


if __name__ == "__main__":
    main()
