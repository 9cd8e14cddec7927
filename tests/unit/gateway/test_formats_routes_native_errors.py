"""Each wire format's error envelope and answer text, `[[models]]` validation, and native error shapes by path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from farebox.errors import FareboxError, InvalidRequest, PayloadTooLarge
from farebox.gateway.formats import FORMATS
from farebox.gateway.model_routes import DEFAULT_MOCK_MODELS, ModelRoute, Provider, default_routes
from farebox.gateway.native_errors import native_error_shape
from farebox.gateway.providers.anthropic import AnthropicUsageCollector
from farebox.gateway.providers.gemini import GeminiUsageCollector
from farebox.gateway.providers.openai import OpenAIUsageCollector


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("openai", {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "key_rpm"}}),
        ("anthropic", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"},
                       "request_id": "req_9"}),
        ("gemini", {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}),
    ],
)  # fmt: skip
def test_each_format_answers_errors_in_its_own_envelope(wire: str, expected: dict[str, Any]) -> None:
    assert FORMATS[wire].error_body(429, "slow down", code="key_rpm", request_id="req_9") == expected  # type: ignore[index]


def test_anthropic_leaves_out_an_absent_request_id() -> None:
    body = FORMATS["anthropic"].error_body(400, "bad", code="invalid_json", request_id=None)
    assert body == {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}


@pytest.mark.parametrize(
    ("wire", "collector", "providers", "passthrough"),
    [
        ("openai", OpenAIUsageCollector, None, False),
        ("anthropic", AnthropicUsageCollector, None, False),
        ("gemini", GeminiUsageCollector, frozenset({Provider.GEMINI, Provider.MOCK}), True),
    ],
)
def test_the_format_table(wire: str, collector: type, providers: frozenset[Provider] | None, passthrough: bool) -> None:
    wire_format = FORMATS[wire]  # type: ignore[index]
    assert wire_format.name == wire
    first, second = wire_format.collector(), wire_format.collector()
    assert type(first) is collector and first is not second  # a fresh collector per stream
    assert (wire_format.providers, wire_format.query_passthrough) == (providers, passthrough)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"choices": [{"message": {"role": "assistant", "content": "Hi"}}, {"message": {"content": " all"}}]},
         "Hi all"),
        ({"choices": [{"text": "legacy"}]}, "legacy"),
        ({"choices": [{"message": {"content": None, "tool_calls": [{"id": "c"}]}}]}, ""),
        ({"choices": [None, "x", {"message": "y"}]}, ""),
        ({"choices": "none"}, ""),
        ({"data": [{"embedding": [0.1]}]}, ""),
    ],
)  # fmt: skip
def test_openai_answer_text(body: dict[str, Any], text: str) -> None:
    assert FORMATS["openai"].response_text(orjson.dumps(body)) == text


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}]}', "Hello there"),
        (b'{"content": [{"type": "tool_use", "input": {"a": 1}}, {"type": "text", "text": "!"}]}', "!"),
        (b'{"content": [null, 3, {"text": 4}]}', ""),
        (b'{"content": "plain"}', ""),
        (b"not json", ""),
        (b"[]", ""),
    ],
)
def test_anthropic_answer_text(body: bytes, text: str) -> None:
    assert FORMATS["anthropic"].response_text(body) == text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"provider": "azure", "api_version": "2024-10-21", "api_key_env": "K"}, "provider azure needs a base_url"),
        ({"provider": "openai_compatible"}, "provider openai_compatible needs a base_url"),
        ({"provider": "openai", "api_key_env": "K", "base_url": "api.openai.com/v1"}, "must start with http"),
        ({"provider": "mock", "base_url": "ftp://x"}, "must start with http"),
        ({"provider": "azure", "base_url": "https://r.openai.azure.com", "api_key_env": "K"}, "needs an api_version"),
        ({"provider": "openai"}, "provider openai needs api_key_env"),
        ({"provider": "anthropic"}, "provider anthropic needs api_key_env"),
        ({"provider": "gemini"}, "provider gemini needs api_key_env"),
        ({"provider": "bedrock", "api_key_env": "K"}, "provider"),
        ({"provider": "mock", "upstream_model": ""}, "upstream_model"),
        ({"provider": "mock", "region": "eu"}, "region"),  # unknown keys are typos, refused
    ],
)
def test_invalid_routes_name_the_model_and_the_problem(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as raised:
        ModelRoute(name="m1", **fields)
    if "needs" in message or "must" in message:
        assert "model 'm1'" in str(raised.value)


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="name"):
        ModelRoute(name="", provider=Provider.MOCK)


@pytest.mark.parametrize(
    "fields",
    [
        {"provider": "mock"},
        {"provider": "openai_compatible", "base_url": "http://localhost:11434/v1"},  # e.g. Ollama: no key needed
        {
            "provider": "azure",
            "base_url": "https://r.openai.azure.com",
            "api_version": "2024-10-21",
            "api_key_env": "K",
        },
        {"provider": "gemini", "api_key_env": "GEMINI_API_KEY", "price_as": "google/gemini-2.5-flash"},
    ],
)
def test_valid_routes(fields: dict[str, Any]) -> None:
    assert ModelRoute(name="m1", **fields).provider == Provider(fields["provider"])


def test_the_upstream_name_defaults_to_the_client_name_and_routes_are_frozen() -> None:
    assert ModelRoute(name="fast", provider=Provider.MOCK).upstream == "fast"
    renamed = ModelRoute(name="fast", provider=Provider.MOCK, upstream_model="gpt-4o-mini")
    assert renamed.upstream == "gpt-4o-mini"
    with pytest.raises(ValidationError):
        renamed.name = "slow"  # type: ignore[misc]


def test_default_routes_serve_every_default_model_from_the_mock_priced_as_its_provider() -> None:
    routes = default_routes()
    assert [route.name for route in routes] == [name for name, _ in DEFAULT_MOCK_MODELS]
    assert {route.provider for route in routes} == {Provider.MOCK}
    assert {route.name: route.price_as for route in routes}["claude-sonnet-4-5"] == "anthropic/claude-sonnet-4-5"
    assert all(route.base_url is None and route.api_key_env is None for route in routes)


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/messages", "anthropic"),
        ("/v1beta/models/gemini-2.5-flash:generateContent", "gemini"),
        ("/v1/models/gemini-2.5-flash:streamGenerateContent", "gemini"),
        ("/v1/chat/completions", None),
        ("/v1/embeddings", None),
        ("/v1/models", None),  # OpenAI's model list, not a Gemini route
        ("/v1/messages/count_tokens", None),  # only the exact path is Anthropic's proxied route
        ("/v1/messagesx", None),
        ("/v1beta/models", None),
        ("/admin/v1/messages", None),
    ],
)
def test_native_error_shape_by_path(path: str, shape: str | None) -> None:
    error = PayloadTooLarge("the request body is over 1 MB")
    body = native_error_shape(path, error)
    if shape is None:
        assert body is None
    elif shape == "anthropic":
        assert body == {"type": "error", "error": {"type": "request_too_large", "message": error.message}}
    else:
        assert body == {"error": {"code": 413, "message": error.message, "status": "INVALID_ARGUMENT"}}


@pytest.mark.parametrize(("error", "gemini_status"), [(InvalidRequest("bad"), "INVALID_ARGUMENT"),
                                                      (FareboxError("boom"), "INTERNAL")])  # fmt: skip
def test_native_errors_follow_the_error_status(error: FareboxError, gemini_status: str) -> None:
    gemini = native_error_shape("/v1beta/models/g:generateContent", error)
    assert gemini == {"error": {"code": error.status, "message": error.message, "status": gemini_status}}
    anthropic = native_error_shape("/v1/messages", error)
    assert anthropic is not None and anthropic["error"]["message"] == error.message
