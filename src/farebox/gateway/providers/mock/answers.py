"""How the mock sends answers: JSON bodies, delayed starts, and SSE streams that can be cut short."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from farebox.gateway.providers.mock.behaviour import MockPlan
from farebox.gateway.providers.payload import JSONObject, load_object

__all__ = [
    "MockStreamAborted",
    "json_response",
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


async def _events(plan: MockPlan, events: Sequence[bytes]) -> AsyncIterator[bytes]:
    for index, event in enumerate(events):
        if plan.drop_after is not None and index >= plan.drop_after:
            if plan.abort:
                raise MockStreamAborted(f"mock stream aborted after {index} chunks")
            return
        if index and plan.chunk_delay_s > 0:
            await anyio.sleep(plan.chunk_delay_s)
        yield event


def stream_response(plan: MockPlan, events: Sequence[bytes], *, media_type: str = "text/event-stream") -> Response:
    """A streaming response sending `events` one by one, honouring the plan's delays and drop point."""
    return StreamingResponse(
        _events(plan, events),
        media_type=media_type,
        headers={"cache-control": "no-cache"},
    )
