"""The Responses API (`POST /v1/responses`) on the proxy: usage from bodies and typed event streams built with the
official SDK's types, the text an estimate counts, what a request may ask for, and what the reservation holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseTextDeltaEvent,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from farebox.core.pricing import Usage
from farebox.errors import InvalidRequest
from farebox.gateway.formats import FORMATS
from farebox.gateway.model_routes import ModelRoute, Provider
from farebox.gateway.operations import OPERATIONS, parse_request, upstream_body
from farebox.gateway.providers import openai as wire
from farebox.gateway.tokens import Tokenizer
from farebox.gateway.usage import collector_for, reported_usage
from farebox.gateway.wire import error_type_of, upstream_error_type
from farebox.gateway.worst_case import worst_case_usage

RESPONSES = next(operation for operation in OPERATIONS if operation.path == "/v1/responses")
TOKENS = Tokenizer()
USAGE = ResponseUsage(
    input_tokens=2_000,
    input_tokens_details=InputTokensDetails(cached_tokens=1_536, cache_write_tokens=0),
    output_tokens=700,
    output_tokens_details=OutputTokensDetails(reasoning_tokens=512),
    total_tokens=2_700,
)
EXPECTED = Usage(input_tokens=2_000, output_tokens=700, cached_input_tokens=1_536, reasoning_tokens=512)


def response(fixture_bytes: Callable[[str], bytes], **fields: Any) -> Response:
    """The recorded live answer, with `fields` replaced, validated by the SDK's own `Response` type."""
    return Response.model_validate({**orjson.loads(fixture_bytes("openai_response.json")), **fields})


def sse(*events: Any) -> bytes:
    """Events as OpenAI streams them: an `event:` line naming the type, one `data:` line of JSON."""
    return b"".join(
        b"event: " + event.type.encode() + b"\ndata: " + event.to_json(indent=None).encode() + b"\n\n"
        for event in events
    )


def stream(fixture_bytes: Callable[[str], bytes], final: type[Any], status: str, **fields: Any) -> bytes:
    started = response(fixture_bytes, status="in_progress", output=[], usage=None)
    done = response(fixture_bytes, status=status, usage=USAGE.model_dump(mode="json"), **fields)
    deltas = [
        ResponseTextDeltaEvent(
            type="response.output_text.delta",
            sequence_number=index + 1,
            item_id="msg_1",
            output_index=0,
            content_index=0,
            delta=word,
            logprobs=[],
        )
        for index, word in enumerate(["Fog", "gy", " today"])
    ]
    return sse(
        ResponseCreatedEvent(type="response.created", sequence_number=0, response=started),
        *deltas,
        final(type=f"response.{status}", sequence_number=4, response=done),
    )


def parsed(body: dict[str, Any]) -> Any:
    return parse_request(RESPONSES, orjson.dumps(body), content_type="application/json")


def test_a_live_response_body_reports_its_usage_and_text(fixture_bytes: Callable[[str], bytes]) -> None:
    body = fixture_bytes("openai_response.json")
    assert reported_usage(RESPONSES, parsed({"model": "gpt-4o-mini", "input": "hi"}), body) == Usage(
        input_tokens=14, output_tokens=50
    )
    text = FORMATS["openai"].response_text(body)
    assert text.startswith("I can't provide real-time updates") and text.endswith("variable weather!")


def test_cached_and_reasoning_tokens_of_a_response_body(fixture_bytes: Callable[[str], bytes]) -> None:
    body = response(fixture_bytes, usage=USAGE.model_dump(mode="json")).to_json(indent=None).encode()
    assert wire.usage_from_body(body) == EXPECTED


def test_the_text_of_every_kind_of_output_item() -> None:
    message = [{"type": "refusal", "refusal": "No. "}, {"type": "output_text", "text": "Ok"}]
    body = {
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Think. "}]},
            {"type": "function_call", "id": "fc_1", "call_id": "c", "name": "f", "arguments": '{"city": "SF"} '},
            {"type": "message", "content": message},
            "not an item",
        ]
    }
    assert FORMATS["openai"].response_text(orjson.dumps(body)) == 'Think. {"city": "SF"} No. Ok'


def splits(data: bytes) -> Iterator[list[bytes]]:
    yield [data]
    yield from ([data[:cut], data[cut:]] for cut in range(1, len(data), 7))
    yield [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize(
    ("final", "status", "fields"),
    [
        (ResponseCompletedEvent, "completed", {}),
        (ResponseIncompleteEvent, "incomplete", {"incomplete_details": {"reason": "max_output_tokens"}}),
    ],
    ids=["completed", "incomplete"],
)
def test_a_typed_event_stream_reports_the_final_usage_however_it_is_split(
    fixture_bytes: Callable[[str], bytes], final: type[Any], status: str, fields: dict[str, Any]
) -> None:
    data = stream(fixture_bytes, final, status, **fields)
    for chunks in splits(data):
        collector = collector_for(RESPONSES)
        for chunk in chunks:
            collector.feed(chunk)
        collector.close()
        assert (collector.usage, collector.complete, collector.error) == (EXPECTED, True, None)
        assert collector.text == "Foggy today"


def test_a_failed_response_completes_the_stream_with_its_error(fixture_bytes: Callable[[str], bytes]) -> None:
    error = {"code": "server_error", "message": "The model failed to generate a response."}
    collector = collector_for(RESPONSES)
    collector.feed(stream(fixture_bytes, ResponseFailedEvent, "failed", error=error))
    assert collector.complete and collector.usage == EXPECTED
    assert collector.error == error and error_type_of(collector.error) == "server_error"
    no_error = collector_for(RESPONSES)
    no_error.feed(b'data: {"type": "response.failed", "response": {"error": null}}\n\n')
    assert no_error.complete and no_error.error == {"code": "response_failed"}


@pytest.mark.parametrize(
    ("error", "named"),
    [
        ({"type": "rate_limit_error", "code": "rate_limit_exceeded"}, "rate_limit_error"),
        ({"code": 503, "status": "UNAVAILABLE"}, "UNAVAILABLE"),
        ({"code": "server_error"}, "server_error"),
        ({"type": "", "code": None}, None),
        (None, None),
    ],
)
def test_the_type_an_error_names(error: dict[str, Any] | None, named: str | None) -> None:
    assert error_type_of(error) == named
    assert upstream_error_type(orjson.dumps({"error": error}), 500) == (named or "http_500")


def test_input_items_that_are_not_messages_count_their_text() -> None:
    output = "72F and foggy " * 20
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in SF?"}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "weather", "arguments": '{"city":"SF"}'},
        {"type": "function_call_output", "call_id": "call_9", "output": output, "status": "completed"},
    ]  # fmt: skip
    body = {"model": "gpt-4o", "instructions": "Be brief.", "input": items}
    pieces = ["Be brief.", "Weather in SF?", "weather", '{"city":"SF"}', output]  # never the ids or types
    assert wire.estimate_input_tokens(body, tokenizer=TOKENS) == sum(TOKENS.count(piece) for piece in pieces)
    reserved = worst_case_usage(RESPONSES, parsed(body), default_output_tokens=100)
    assert reserved.input_tokens == sum(len(piece.encode()) for piece in pieces)


@pytest.mark.parametrize(
    ("fields", "output"),
    [
        ({"max_output_tokens": 300}, 300),
        ({}, 4096),  # none set: the configured default, as for chat
        ({"max_output_tokens": 300, "max_tokens": 20, "max_completion_tokens": 10, "n": 3}, 300),
        ({"max_tokens": 20, "n": 3}, 4096),  # not Responses parameters: the upstream applies none of them
    ],
)
def test_the_reservation_holds_max_output_tokens_only(fields: dict[str, Any], output: int) -> None:
    reserved = worst_case_usage(RESPONSES, parsed({"model": "m", "input": "hé", **fields}), default_output_tokens=4096)
    assert reserved == Usage(input_tokens=3, output_tokens=output)


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({"max_output_tokens": 15}, "integer_below_min_value", "Expected a value >= 16, but got 15 instead."),
        ({"max_output_tokens": 0}, "integer_below_min_value", "Expected a value >= 16, but got 0 instead."),
        ({"max_output_tokens": -1}, "integer_below_min_value", "but got -1 instead."),
        ({"max_output_tokens": "64"}, "invalid_type", "Invalid type for 'max_output_tokens': expected an integer"),
        ({"max_output_tokens": 64.5}, "invalid_type", "expected an integer"),
        ({"max_output_tokens": True}, "invalid_type", "expected an integer"),
        ({"input": {"role": "user"}}, "invalid_type", "Invalid type for 'input'"),
        ({"background": True}, "unsupported_parameter", "'background'"),
    ],
)
def test_what_openai_would_refuse_or_farebox_cannot_meter_is_refused(
    fields: dict[str, Any], code: str, message: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parsed({"model": "m", "input": "hi", **fields})
    assert (refused.value.status, refused.value.code) == (400, code)
    assert message in refused.value.message


@pytest.mark.parametrize(
    "fields",
    [{"max_output_tokens": 16}, {"max_output_tokens": 16.0}, {"background": False}, {"input": []}, {"n": 0}],
)
def test_what_the_responses_api_accepts_is_forwarded(fields: dict[str, Any]) -> None:
    assert parsed({"model": "m", **fields}).document == {"model": "m", **fields}


@pytest.mark.parametrize("options", [None, {"include_obfuscation": False}])
def test_a_responses_stream_goes_upstream_as_sent(options: dict[str, Any] | None) -> None:
    document = {"model": "m", "input": "hi", "stream": True, **({"stream_options": options} if options else {})}
    request = parsed(document)
    assert request.client_wants_usage is False
    assert upstream_body(RESPONSES, request, ModelRoute(name="m", provider=Provider.MOCK)) is request.body
    renamed = upstream_body(RESPONSES, request, ModelRoute(name="m", provider=Provider.MOCK, upstream_model="gpt-5"))
    assert orjson.loads(renamed) == {**document, "model": "gpt-5"}  # renamed, and no include_usage added
