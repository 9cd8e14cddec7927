"""The mock's Responses API answer: the `response` object, and the typed events that stream it.

Shaped as OpenAI sends them (the `openai` SDK's `types.responses`): a non-streaming answer is the final
`response` object; a stream is `response.created`, `response.in_progress`, then for each output item
`response.output_item.added`, its content (`response.content_part.added`, `response.output_text.delta`...,
`response.output_text.done`, `response.content_part.done`) and `response.output_item.done`, and last
`response.completed`, or `response.incomplete` when `max_output_tokens` cut it short. Each event is an SSE
`event:` line naming its type and one `data:` line, numbered by `sequence_number`; no `[DONE]` follows.

`max_output_tokens` bounds visible and reasoning tokens together, as OpenAI documents it: reasoning comes first
(a `reasoning` item with an empty summary), the message gets what is left.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from farebox.gateway.providers.mock.answers import sse_event
from farebox.gateway.providers.mock.behaviour import MockPlan, generated_words, new_id, now
from farebox.gateway.providers.payload import JSONObject, optional_count

__all__ = ["MockResponse"]


class MockResponse:
    """One mock answer to `POST /responses`, following `plan`."""

    def __init__(self, plan: MockPlan, request: JSONObject, *, input_tokens: int) -> None:
        limit = optional_count(request, "max_output_tokens")
        reasoning = plan.reasoning_tokens if limit is None else min(plan.reasoning_tokens, limit)
        visible = plan.output_tokens if limit is None else min(plan.output_tokens, limit - reasoning)
        self.incomplete = limit is not None and (plan.finish_length or plan.output_tokens + reasoning > limit)
        """Whether `max_output_tokens` cut the answer short (status `incomplete`)."""
        self._words = generated_words(visible)
        self._reasoning_id = new_id("rs_") if reasoning else None
        self._message_id = new_id("msg_") if visible else None
        cached = min(plan.cached_tokens, input_tokens)
        self._usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {
                "cached_tokens": cached,
                "cache_write_tokens": min(plan.cache_write_tokens, input_tokens - cached),
            },
            "output_tokens": visible + reasoning,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + visible + reasoning,
        }
        tools = request.get("tools")
        metadata = request.get("metadata")
        self._head: dict[str, object] = {
            "id": new_id("resp_"),
            "object": "response",
            "created_at": now(),
            "status": "in_progress",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": request.get("instructions"),
            "max_output_tokens": limit,
            "max_tool_calls": None,
            "model": plan.model,
            "output": [],
            "parallel_tool_calls": True,
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": request.get("store") is not False,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": tools if isinstance(tools, list) else [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": None,
            "user": None,
            "metadata": metadata if isinstance(metadata, dict) else {},
        }

    def body(self) -> dict[str, object]:
        """The final `response` object: the non-streaming answer, and the last event's `response`."""
        status = "incomplete" if self.incomplete else "completed"
        details = {"reason": "max_output_tokens"} if self.incomplete else None
        output = [self._reasoning_item(), self._message_item(done=True)]
        return {
            **self._head,
            "status": status,
            "incomplete_details": details,
            "output": [item for item in output if item is not None],
            "usage": self._usage,
        }

    def events(self) -> Iterator[bytes]:
        """The stream of typed SSE events, ending in `response.completed` (or `response.incomplete`); each is
        made as it is sent, so a long answer never holds the event loop while the whole is built."""
        sequence = itertools.count()

        def emit(kind: str, **fields: object) -> bytes:
            return sse_event({"type": kind, "sequence_number": next(sequence), **fields}, event=kind)

        yield emit("response.created", response=self._head)
        yield emit("response.in_progress", response=self._head)
        index = 0
        reasoning = self._reasoning_item()
        if reasoning is not None:
            yield emit("response.output_item.added", output_index=index, item=reasoning)
            yield emit("response.output_item.done", output_index=index, item=reasoning)
            index += 1
        started, finished = self._message_item(done=False), self._message_item(done=True)
        if started is not None and finished is not None:
            at = {"item_id": self._message_id, "output_index": index, "content_index": 0}
            text = "".join(self._words)
            yield emit("response.output_item.added", output_index=index, item=started)
            yield emit("response.content_part.added", **at, part=_text_part(""))
            for word in self._words:
                yield emit("response.output_text.delta", **at, delta=word, logprobs=[])
            yield emit("response.output_text.done", **at, text=text, logprobs=[])
            yield emit("response.content_part.done", **at, part=_text_part(text))
            yield emit("response.output_item.done", output_index=index, item=finished)
        body = self.body()
        yield emit(f"response.{body['status']}", response=body)

    def _reasoning_item(self) -> dict[str, object] | None:
        if self._reasoning_id is None:
            return None
        return {"id": self._reasoning_id, "type": "reasoning", "summary": []}

    def _message_item(self, *, done: bool) -> dict[str, object] | None:
        if self._message_id is None:
            return None
        status = ("incomplete" if self.incomplete else "completed") if done else "in_progress"
        content = [_text_part("".join(self._words))] if done else []
        return {"id": self._message_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def _text_part(text: str) -> dict[str, object]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
