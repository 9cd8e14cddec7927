"""What the proxy reads from each operation's request body, which error a bad body gets, and what goes upstream."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from farebox.core.events import Axis
from farebox.errors import InvalidRequest
from farebox.gateway.model_routes import ModelRoute, Provider
from farebox.gateway.operations import OPERATIONS, Operation, parse_request, upstream_body

BY_PATH = {operation.path: operation for operation in OPERATIONS}
JSON_OPERATIONS = [operation for operation in OPERATIONS if not operation.multipart and not operation.model_in_path]
GEMINI_OPERATIONS = [operation for operation in OPERATIONS if operation.model_in_path]
TRANSCRIPTIONS = BY_PATH["/v1/audio/transcriptions"]
CHAT = BY_PATH["/v1/chat/completions"]
MESSAGES = BY_PATH["/v1/messages"]


def ids(operations: list[Operation]) -> list[str]:
    return [operation.path for operation in operations]


def form(fields: dict[str, str], *, file: bytes = b"RIFF....WAVE") -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/", files={"file": ("a.wav", file, "audio/wav")}, data=fields)
    return request.read(), request.headers["content-type"]


def test_the_operation_table() -> None:
    assert len({operation.path for operation in OPERATIONS}) == len(OPERATIONS)
    assert {(op.path, op.operation, op.axis, op.wire) for op in OPERATIONS if not op.model_in_path} == {
        ("/v1/chat/completions", "chat.completions", Axis.LLM, "openai"),
        ("/v1/completions", "completions", Axis.LLM, "openai"),
        ("/v1/responses", "responses", Axis.LLM, "openai"),
        ("/v1/embeddings", "embeddings", Axis.LLM, "openai"),
        ("/v1/audio/speech", "audio.speech", Axis.VOICE, "openai"),
        ("/v1/audio/transcriptions", "audio.transcriptions", Axis.VOICE, "openai"),
        ("/v1/images/generations", "images", Axis.LLM, "openai"),
        ("/v1/messages", "messages", Axis.LLM, "anthropic"),
    }
    assert [op.path for op in OPERATIONS if op.multipart] == ["/v1/audio/transcriptions"]
    # Only these streams report usage when asked; the Responses API reports it unasked.
    assert [op.path for op in OPERATIONS if op.asks_stream_usage] == ["/v1/chat/completions", "/v1/completions"]
    # Gemini's routes exist under both API versions the google-genai SDK calls, streaming decided by the path.
    assert {(op.path, op.upstream_path, op.streams) for op in GEMINI_OPERATIONS} == {
        (f"/{version}/models/{{model}}:{action}", f":{action}", action.startswith("stream"))
        for version in ("v1beta", "v1")
        for action in ("generateContent", "streamGenerateContent")
    }
    assert all(op.wire == "gemini" and op.operation == "generate_content" for op in GEMINI_OPERATIONS)


@pytest.mark.parametrize("operation", JSON_OPERATIONS, ids=ids(JSON_OPERATIONS))
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b"[]", "invalid_json"),
        (b'"gpt-4o"', "invalid_json"),
        (b"null", "invalid_json"),
        (b"{}", "missing_model"),
        (b'{"model": ""}', "missing_model"),
        (b'{"model": null}', "missing_model"),
        (b'{"model": 4}', "missing_model"),
        (b'{"model": ["gpt-4o"]}', "missing_model"),
    ],
)
def test_bad_json_bodies(operation: Operation, body: bytes, code: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_request(operation, body, content_type="application/json")
    assert raised.value.code == code
    assert raised.value.status == 400


@pytest.mark.parametrize("operation", JSON_OPERATIONS, ids=ids(JSON_OPERATIONS))
@pytest.mark.parametrize(
    ("fields", "stream"),
    [({}, False), ({"stream": True}, True), ({"stream": False}, False), ({"stream": "true"}, False),
     ({"stream": 1}, False)],
)  # fmt: skip
def test_model_and_stream_flag(operation: Operation, fields: dict[str, Any], stream: bool) -> None:
    body = orjson.dumps({"model": "gpt-4o", **fields})
    parsed = parse_request(operation, body, content_type="application/json")
    assert (parsed.model, parsed.stream, parsed.body, parsed.form) == ("gpt-4o", stream, body, None)
    assert parsed.document == orjson.loads(body)


@pytest.mark.parametrize(
    ("operation", "fields", "wants"),
    [
        (CHAT, {"stream": True, "stream_options": {"include_usage": True}}, True),
        (CHAT, {"stream": True, "stream_options": {"include_usage": False}}, False),
        (CHAT, {"stream": True, "stream_options": {"include_usage": 1}}, False),
        (CHAT, {"stream": True}, False),
        (CHAT, {"stream_options": {"include_usage": True}}, False),  # not streaming: nothing to ask
        (MESSAGES, {"stream": True, "stream_options": {"include_usage": True}}, False),  # OpenAI's field only
    ],
)
def test_whether_the_client_asked_for_stream_usage(operation: Operation, fields: dict[str, Any], wants: bool) -> None:
    parsed = parse_request(operation, orjson.dumps({"model": "m", **fields}), content_type="application/json")
    assert parsed.client_wants_usage is wants


@pytest.mark.parametrize("operation", GEMINI_OPERATIONS, ids=ids(GEMINI_OPERATIONS))
def test_gemini_routes_take_model_and_stream_from_the_path(operation: Operation) -> None:
    body = b'{"model": "ignored", "stream": false, "contents": []}'
    parsed = parse_request(operation, body, content_type="application/json", path_model="gemini-2.5-pro")
    assert (parsed.model, parsed.stream, parsed.client_wants_usage) == ("gemini-2.5-pro", operation.streams, False)
    with pytest.raises(InvalidRequest) as raised:
        parse_request(operation, body, content_type="application/json", path_model="")
    assert raised.value.code == "missing_model"


def test_a_transcription_form() -> None:
    body, content_type = form({"model": "whisper-1", "stream": "true"})
    parsed = parse_request(TRANSCRIPTIONS, body, content_type=content_type)
    assert (parsed.model, parsed.stream, parsed.document, parsed.client_wants_usage) == (
        "whisper-1",
        False,
        None,
        False,
    )
    assert parsed.form is not None and parsed.form["file"] == b"RIFF....WAVE"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        form({}),
        form({"model": ""}),
        (b'{"model": "whisper-1"}', "application/json"),  # a JSON body where a form is expected
        (form({"model": "whisper-1"})[0], "multipart/form-data"),  # no boundary: no fields
    ],
    ids=["no-model", "empty-model", "json", "no-boundary"],
)
def test_a_transcription_without_a_model_is_refused(body: bytes, content_type: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_request(TRANSCRIPTIONS, body, content_type=content_type)
    assert raised.value.code == "missing_model"


def route(name: str, upstream: str | None = None) -> ModelRoute:
    return ModelRoute(name=name, provider=Provider.MOCK, upstream_model=upstream)


@pytest.mark.parametrize("operation", JSON_OPERATIONS, ids=ids(JSON_OPERATIONS))
def test_a_renamed_model_is_the_only_change_to_a_json_body(operation: Operation) -> None:
    document = {"model": "fast", "messages": [{"role": "user", "content": "hé"}], "temperature": 0.2}
    parsed = parse_request(operation, orjson.dumps(document), content_type="application/json")
    assert orjson.loads(upstream_body(operation, parsed, route("fast", "gpt-4o-mini"))) == {
        **document,
        "model": "gpt-4o-mini",
    }
    same = upstream_body(operation, parsed, route("fast", "fast"))
    assert same is parsed.body  # an upstream name equal to the client's: the bytes go as they came


@pytest.mark.parametrize(
    ("operation", "fields", "options"),
    [
        (CHAT, {"stream": True}, {"include_usage": True}),
        (CHAT, {"stream": True, "stream_options": {"include_obfuscation": False}},
         {"include_obfuscation": False, "include_usage": True}),
        (BY_PATH["/v1/completions"], {"stream": True}, {"include_usage": True}),
        (CHAT, {"stream": True, "stream_options": {"include_usage": True}}, {"include_usage": True}),
        (CHAT, {"stream": False}, None),
        (MESSAGES, {"stream": True}, None),  # Anthropic streams always report usage
    ],
)  # fmt: skip
def test_stream_usage_is_asked_for_only_on_openai_streams(
    operation: Operation, fields: dict[str, Any], options: dict[str, Any] | None
) -> None:
    parsed = parse_request(operation, orjson.dumps({"model": "m", **fields}), content_type="application/json")
    sent = upstream_body(operation, parsed, route("m"))
    assert orjson.loads(sent).get("stream_options") == options
    if options is None or parsed.client_wants_usage:
        assert sent is parsed.body


def test_rename_and_stream_usage_together() -> None:
    parsed = parse_request(CHAT, b'{"model": "a", "stream": true}', content_type="application/json")
    assert orjson.loads(upstream_body(CHAT, parsed, route("a", "b"))) == {
        "model": "b",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_a_transcription_form_is_rewritten_byte_for_byte_but_the_model() -> None:
    body, content_type = form({"model": "whisper", "language": "en"}, file=b'name="model"\r\n\r\nwhisper\r\n')
    parsed = parse_request(TRANSCRIPTIONS, body, content_type=content_type)
    sent = upstream_body(TRANSCRIPTIONS, parsed, route("whisper", "whisper-1"))
    assert sent.count(b"\r\n\r\nwhisper-1\r\n") == 1
    assert len(sent) == len(body) + 2
    assert upstream_body(TRANSCRIPTIONS, parsed, route("whisper")) is body


def test_a_form_whose_model_field_cannot_be_found_is_refused_on_rename() -> None:
    # A part header between the disposition and the value (some clients send a Content-Type per field).
    body = (
        b'--b\r\nContent-Disposition: form-data; name="model"\r\nContent-Type: text/plain\r\n\r\nwhisper\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF\r\n--b--\r\n'
    )
    parsed = parse_request(TRANSCRIPTIONS, body, content_type="multipart/form-data; boundary=b")
    assert parsed.model == "whisper"
    assert upstream_body(TRANSCRIPTIONS, parsed, route("whisper")) is body
    with pytest.raises(InvalidRequest) as raised:
        upstream_body(TRANSCRIPTIONS, parsed, route("whisper", "whisper-1"))
    assert raised.value.code == "unsupported"
