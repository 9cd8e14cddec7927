"""How the mock sends answers: JSON bodies, delayed starts, and SSE streams that can be cut short."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping

import anyio
import anyio.lowlevel
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from farebox.gateway.providers.mock.behaviour import MockPlan
from farebox.gateway.providers.payload import JSONObject, load_object

__all__ = [
    "MockStreamAborted",
    "json_response",
    "paced_response",
    "read_json",
    "sse_event",
    "stream_response",
    "wait_first_byte",
]


class MockStreamAborted(Exception):
    """Raised inside a mock stream to abort its connection (`x-mock-drop-mode: abort`)."""


def json_response(payload: object, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response, encoded with orjson."""
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


async def read_json(request: Request) -> JSONObject | None:
    """The request body as a JSON object, or `None` when it is not one."""
    return load_object(await request.body())


async def wait_first_byte(plan: MockPlan) -> None:
    """Sleep for the plan's time to first byte."""
    if plan.latency_s > 0:
        await anyio.sleep(plan.latency_s)


def sse_event(data: object, *, event: str | None = None, line_end: bytes = b"\n") -> bytes:
    """One SSE event: an optional `event:` line and one `data:` line of JSON (or of raw text when bytes)."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    head = b"event: " + event.encode() + line_end if event is not None else b""
    return head + b"data: " + payload + line_end + line_end


_EVENTS_PER_TURN = 64
"""Stream events made and sent between two turns given to the event loop, when there is no chunk delay."""


async def _events(plan: MockPlan, events: Iterable[bytes]) -> AsyncIterator[bytes]:
    for index, event in enumerate(events):
        if plan.drop_after is not None and index >= plan.drop_after:
            if plan.abort:
                raise MockStreamAborted(f"mock stream aborted after {index} chunks")
            return
        if index and plan.chunk_delay_s > 0:
            await anyio.sleep(plan.chunk_delay_s)
        elif index % _EVENTS_PER_TURN == 0:
            # Sending need not wait, so a long answer would otherwise hold the loop (and its server) to the end.
            await anyio.lowlevel.checkpoint()
        yield event


async def _paced(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
        await anyio.lowlevel.checkpoint()


def paced_response(pieces: Iterable[bytes], *, media_type: str = "application/json") -> Response:
    """One body sent in `pieces`, each made only once the event loop has had a turn since the last."""
    return StreamingResponse(_paced(pieces), media_type=media_type)


def stream_response(plan: MockPlan, events: Iterable[bytes], *, media_type: str = "text/event-stream") -> Response:
    """A streaming response sending `events` one by one as they are made, with the plan's delays and drop point."""
    return StreamingResponse(
        _events(plan, events),
        media_type=media_type,
        headers={"cache-control": "no-cache"},
    )
