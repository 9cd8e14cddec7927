"""The proxied operations, and reading from a request body only what the proxy needs.

Each `Operation` is one proxy route: its path, the upstream path, the wire format, what it is metered as.
`parse_request` reads the model, the stream flag and `stream_options` (JSON), or the `model` field of a
multipart form; Gemini's native routes name the model and whether to stream in the path instead. The body
goes upstream byte for byte unless the model must be renamed or stream usage asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from farebox.core.events import Axis
from farebox.errors import InvalidRequest
from farebox.gateway.model_routes import ModelRoute
from farebox.gateway.providers import openai
from farebox.gateway.providers.media import parse_multipart
from farebox.gateway.providers.payload import JSONObject, load_object
from farebox.gateway.upstream import Wire

__all__ = ["OPERATIONS", "Operation", "ParsedRequest", "check_limits", "parse_request", "upstream_body"]


@dataclass(frozen=True, slots=True)
class Operation:
    """One proxy route."""

    path: str
    """The route's path on farebox (`/v1/chat/completions`)."""
    upstream_path: str
    """The path below the upstream's base URL (`/chat/completions`), or after Gemini's `models/{model}`."""
    operation: str
    """The usage event's operation (`chat.completions`)."""
    axis: Axis
    wire: Wire
    multipart: bool = False
    """Whether the body is `multipart/form-data` (transcriptions) rather than JSON."""
    streams: bool = False
    """Whether the route itself asks for a stream (Gemini's `:streamGenerateContent`), not a body field."""
    asks_stream_usage: bool = False
    """Whether its streams report usage only when asked (`stream_options.include_usage`: OpenAI chat and legacy
    completions); the Responses API reports it in `response.completed` unasked, and refuses the option."""

    @property
    def model_in_path(self) -> bool:
        """Whether the model is named by the path's `{model}` (Gemini) rather than the body."""
        return "{model}" in self.path


OPERATIONS = (
    Operation(
        "/v1/chat/completions", "/chat/completions", "chat.completions", Axis.LLM, "openai", asks_stream_usage=True
    ),
    Operation("/v1/completions", "/completions", "completions", Axis.LLM, "openai", asks_stream_usage=True),
    Operation("/v1/responses", "/responses", "responses", Axis.LLM, "openai"),
    Operation("/v1/embeddings", "/embeddings", "embeddings", Axis.LLM, "openai"),
    Operation("/v1/audio/speech", "/audio/speech", "audio.speech", Axis.VOICE, "openai"),
    Operation("/v1/audio/transcriptions", "/audio/transcriptions", "audio.transcriptions", Axis.VOICE, "openai", True),
    Operation("/v1/images/generations", "/images/generations", "images", Axis.LLM, "openai"),
    Operation("/v1/messages", "/messages", "messages", Axis.LLM, "anthropic"),
    # Gemini: the google-genai SDK calls `v1beta`, or `v1` when given a base_url and no api_version.
    *(
        operation
        for version in ("v1beta", "v1")
        for operation in (
            Operation(
                f"/{version}/models/{{model}}:generateContent",
                ":generateContent",
                "generate_content",
                Axis.LLM,
                "gemini",
            ),
            Operation(
                f"/{version}/models/{{model}}:streamGenerateContent",
                ":streamGenerateContent",
                "generate_content",
                Axis.LLM,
                "gemini",
                streams=True,
            ),
        )
    ),
)


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """What the proxy read from a request body."""

    body: bytes
    model: str
    stream: bool
    document: JSONObject | None
    """The JSON body (None for multipart)."""
    form: dict[str, bytes] | None
    """The multipart fields (None for JSON)."""
    client_wants_usage: bool
    """For a stream that reports usage only when asked: whether the client asked for it itself."""


def parse_request(
    operation: Operation, body: bytes, *, content_type: str, path_model: str | None = None
) -> ParsedRequest:
    """Read the model and stream flag of a request.

    Args:
        operation: the route.
        body: the request body.
        content_type: the request's Content-Type.
        path_model: the path's `{model}`, for routes that name it there (`Operation.model_in_path`).

    Raises:
        InvalidRequest: the body is not a JSON object (or not a multipart form), has no `model`, or asks for
            what its provider would refuse and a reservation would misread (see `check_limits`).
    """
    if operation.multipart:
        form = parse_multipart(body, content_type)
        model = form.get("model", b"").decode("utf-8", "replace")
        if not model:
            raise InvalidRequest("a multipart body with a `model` field is required", code="missing_model")
        return ParsedRequest(body, model, False, None, form, False)
    document = load_object(body)
    if document is None:
        raise InvalidRequest("the request body is not a JSON object", code="invalid_json")
    check_limits(operation, document)
    if operation.model_in_path:
        if not path_model:
            raise InvalidRequest("the path must name a model", code="missing_model")
        return ParsedRequest(body, path_model, operation.streams, document, None, False)
    named = document.get("model")
    if not isinstance(named, str) or not named:
        raise InvalidRequest("you must provide a model parameter", code="missing_model")
    stream = document.get("stream") is True
    wants_usage = False
    if stream and operation.asks_stream_usage:
        options = document.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    return ParsedRequest(body, named, stream, document, None, wants_usage)


def check_limits(operation: Operation, document: JSONObject) -> None:
    """Refuse (400) what the provider would refuse and a spend-cap reservation would misread.

    An output limit or choice count that is not a whole number >= 1 (OpenAI's `max_completion_tokens`,
    `max_tokens`, `max_output_tokens` and `n`; Gemini's `maxOutputTokens` and `candidateCount`) would make
    the reservation hold less than the upstream may produce: an upstream that reads 0 as "no limit" let 64
    parallel requests spend 7x a cap. Anthropic documents `max_tokens: 0` as generating nothing (it pre-warms
    the prompt cache), outside a stream only; so 0 is taken there, and reserves no output. A chat's `messages`
    must be a list. The Responses API takes only `max_output_tokens`, of at least 16 as OpenAI requires, and a
    string or list `input`; a `background` response is refused, as its usage is known only to a later poll
    farebox never sees.

    Raises:
        InvalidRequest: naming the field, in the words the providers use.
    """
    if operation.wire == "gemini":
        config = document.get("generationConfig")
        if isinstance(config, dict):
            for name in ("maxOutputTokens", "candidateCount"):
                _check_count(config.get(name), f"generationConfig.{name}")
        return
    if operation.operation == "responses":
        _check_responses(document)
        return
    if operation.wire == "openai":
        for name in _OPENAI_COUNTS:
            _check_count(document.get(name), name)
    else:
        limit = document.get("max_tokens")
        _check_count(limit, "max_tokens", minimum=0)
        if limit == 0 and document.get("stream") is True:
            raise InvalidRequest("max_tokens: 0 (cache pre-warming) cannot be streamed", code="invalid_value")
    messages = document.get("messages")
    if (
        operation.operation in ("chat.completions", "messages")
        and messages is not None
        and not isinstance(messages, list)
    ):
        raise InvalidRequest("Invalid 'messages': expected an array of messages", code="invalid_type")


_OPENAI_COUNTS = ("max_completion_tokens", "max_tokens", "max_output_tokens", "n")


def _check_responses(document: JSONObject) -> None:
    _check_count(document.get("max_output_tokens"), "max_output_tokens", minimum=openai.RESPONSES_MIN_OUTPUT_TOKENS)
    given = document.get("input")
    if given is not None and not isinstance(given, str | list):
        raise InvalidRequest(
            "Invalid type for 'input': expected one of a string or array of input items", code="invalid_type"
        )
    if document.get("background") is True:
        raise InvalidRequest(
            "Unsupported parameter: 'background': farebox meters a response as it is answered, and a background"
            " response is answered to a later poll; send the request without it",
            code="unsupported_parameter",
        )


def _check_count(value: object, name: str, *, minimum: int = 1) -> None:
    refused = openai.count_error(value, name, minimum=minimum)
    if refused is not None:
        code, message = refused
        raise InvalidRequest(message, code=code)


def upstream_body(operation: Operation, parsed: ParsedRequest, route: ModelRoute) -> bytes:
    """The body to send upstream: the client's bytes, unless the model is renamed or stream usage is asked for."""
    document = parsed.document
    if document is None:
        if route.upstream == parsed.model:
            return parsed.body
        return _rename_form_model(parsed.body, parsed.model, route.upstream)
    rename = route.upstream != parsed.model and not operation.model_in_path  # else renamed in the URL
    ask_usage = parsed.stream and operation.asks_stream_usage and not parsed.client_wants_usage
    if not rename and not ask_usage:
        return parsed.body
    updated: dict[str, object] = dict(document)
    if ask_usage:
        updated, _ = openai.with_stream_usage(updated)
    if rename:
        updated["model"] = route.upstream
    return orjson.dumps(updated)


def _rename_form_model(body: bytes, model: str, upstream: str) -> bytes:
    """A multipart body whose `model` field says `upstream` instead of `model`; every other byte kept."""
    old = b'name="model"\r\n\r\n' + model.encode() + b"\r\n"
    if old not in body:
        raise InvalidRequest("the multipart `model` field could not be rewritten for the upstream", code="unsupported")
    return body.replace(old, b'name="model"\r\n\r\n' + upstream.encode() + b"\r\n", 1)
