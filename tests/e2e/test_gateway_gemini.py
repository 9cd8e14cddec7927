"""Gemini's native API, `/v1beta/models/{model}:generateContent` and `:streamGenerateContent`, over loopback HTTP.

Most tests speak the REST wire format with httpx, as the SDKs do: the virtual key as `x-goog-api-key`,
`?key=` or Bearer; the model in the path; `usageMetadata` in bodies and in every `alt=sse` event. The
official `google-genai` SDK drives the same routes at the end (it defaults to API version `v1`, so it is
given `v1beta`). `gemini-2.5-flash` is served by the mock, `slow-gemini` by a `gemini` provider route
pointed at a second mock (so it takes the provider's URL and credential path).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import orjson
import pytest
from google import genai
from google.genai import errors, types

from farebox.core.money import format_usd

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

FLASH = (300, 30, 2_500)
"""gemini-2.5-flash in nano-USD per token: input, cached input, output ($0.30, $0.03, $2.50 / M)."""
BODY: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "Count the fares"}]}]}


def generate_url(gateway: Gateway, model: str, *, stream: bool = False) -> str:
    action = "streamGenerateContent" if stream else "generateContent"
    return f"{gateway.url}/v1beta/models/{model}:{action}"


def expected_cost(metadata: dict[str, Any]) -> str:
    """The catalog cost of a `usageMetadata`: thoughts are billed as output, cached input at its own rate."""
    cached = metadata.get("cachedContentTokenCount", 0)
    output = metadata["candidatesTokenCount"] + metadata.get("thoughtsTokenCount", 0)
    return format_usd((metadata["promptTokenCount"] - cached) * FLASH[0] + cached * FLASH[1] + output * FLASH[2])


def sse_documents(lines: Iterator[str]) -> list[dict[str, Any]]:
    return [orjson.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]


def assert_gemini_error(response: httpx.Response, status: int, rpc_status: str) -> str:
    """Gemini's envelope `{"error": {"code", "message", "status"}}`, and nothing else; returns the message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(response.json()) == {"error"} and set(error) == {"code", "message", "status"}
    assert (error["code"], error["status"]) == (status, rpc_status)
    return str(error["message"])


def test_generate_content_is_recorded_exactly(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    headers = {"x-goog-api-key": secret, "x-mock-cached-tokens": "2", "x-mock-reasoning-tokens": "3"}
    body = {**BODY, "generationConfig": {"maxOutputTokens": 7}}
    response = httpx.post(generate_url(gateway, "gemini-2.5-flash"), json=body, headers=headers)
    assert response.status_code == 200, response.text
    metadata = response.json()["usageMetadata"]
    # Thoughts count within maxOutputTokens, as Gemini counts them: 3 of the 7 go to thinking.
    assert (metadata["candidatesTokenCount"], metadata["thoughtsTokenCount"]) == (4, 3)
    assert metadata["cachedContentTokenCount"] == 2
    event = gateway.event(response.headers["x-farebox-request-id"])
    assert (event["input_tokens"], event["cached_input_tokens"]) == (metadata["promptTokenCount"], 2)
    assert (event["output_tokens"], event["reasoning_tokens"]) == (7, 3)
    assert (event["operation"], event["provider"], event["model"]) == ("generate_content", "mock", "gemini-2.5-flash")
    assert event["key_id"] == key["id"] and event["estimated"] is False and event["streamed"] is False
    assert event["cost_usd"] == response.headers["x-farebox-cost-usd"] == expected_cost(metadata)


def test_streamed_content_is_recorded_before_the_final_chunk(gateway: Gateway) -> None:
    """`?key=` authenticates; `alt=sse` goes upstream; the event is readable once the stream has ended."""
    secret, key = gateway.new_key()
    url = generate_url(gateway, "gemini-2.5-flash", stream=True)
    body = {**BODY, "generationConfig": {"maxOutputTokens": 5}}
    with httpx.stream("POST", url, params={"alt": "sse", "key": secret}, json=body) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        request_id = response.headers["x-farebox-request-id"]
        documents = sse_documents(response.iter_lines())
        event = gateway.event(request_id)  # before the client closed: the final chunk came after the commit
    assert len(documents) == 5
    final = documents[-1]
    assert final["candidates"][0]["finishReason"] == "MAX_TOKENS"  # maxOutputTokens reached
    metadata = final["usageMetadata"]
    assert (event["input_tokens"], event["output_tokens"]) == (metadata["promptTokenCount"], 5)
    assert event["streamed"] is True and event["estimated"] is False and event["ttft_ms"] is not None
    assert (event["operation"], event["key_id"]) == ("generate_content", key["id"])
    assert event["cost_usd"] == expected_cost(metadata)


def test_gemini_provider_route_renames_the_model_in_the_url(gateway: Gateway) -> None:
    """`slow-gemini` is a `gemini` route: upstream `models/gemini-2.5-flash`, priced as Google's model."""
    secret, key = gateway.new_key()
    body = {**BODY, "generationConfig": {"maxOutputTokens": 3}}
    headers = {"Authorization": f"Bearer {secret}"}
    response = httpx.post(generate_url(gateway, "slow-gemini"), json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["modelVersion"] == "gemini-2.5-flash"
    (event,) = gateway.events_of(key["id"])
    assert (event["provider"], event["model"], event["output_tokens"]) == ("gemini", "slow-gemini", 3)
    assert format_usd(event["cost_nano"]) == expected_cost(response.json()["usageMetadata"])


def test_a_json_array_stream_is_metered_from_its_last_usage(gateway: Gateway) -> None:
    """Without `alt=sse` Gemini streams one JSON array; it passes through and is metered once complete."""
    secret, key = gateway.new_key()
    body = {**BODY, "generationConfig": {"maxOutputTokens": 4}}
    response = httpx.post(
        generate_url(gateway, "gemini-2.5-flash", stream=True), json=body, headers={"x-goog-api-key": secret}
    )
    assert response.status_code == 200, response.text
    chunks = response.json()
    assert isinstance(chunks, list) and len(chunks) == 4
    (event,) = gateway.events_of(key["id"])
    assert (event["input_tokens"], event["output_tokens"]) == (chunks[-1]["usageMetadata"]["promptTokenCount"], 4)
    assert event["estimated"] == 0


def test_missing_and_invalid_keys_are_401_in_geminis_shape(gateway: Gateway) -> None:
    url = generate_url(gateway, "gemini-2.5-flash")
    assert "missing API key" in assert_gemini_error(httpx.post(url, json=BODY), 401, "UNAUTHENTICATED")
    invalid = httpx.post(url, json=BODY, params={"key": "fbx_sk_not-a-real-key"})
    assert assert_gemini_error(invalid, 401, "UNAUTHENTICATED") == "invalid API key"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("gemini-9-ultra", "does not exist"),
        ("slow-gpt", "is not served in the gemini API format"),  # an openai_compatible route
        ("slow-claude", "is not served in the gemini API format"),  # an anthropic route
    ],
)
def test_models_no_gemini_route_serves_are_404_in_geminis_shape(gateway: Gateway, model: str, message: str) -> None:
    secret, key = gateway.new_key()
    response = httpx.post(generate_url(gateway, model), json=BODY, headers={"x-goog-api-key": secret})
    assert message in assert_gemini_error(response, 404, "NOT_FOUND")
    assert gateway.events_of(key["id"]) == []


def test_refusals_before_forwarding_are_in_geminis_shape(gateway: Gateway) -> None:
    secret, key = gateway.new_key(allowed_models=["gpt-4o-mini"])
    url = generate_url(gateway, "gemini-2.5-flash")
    headers = {"x-goog-api-key": secret}
    assert_gemini_error(httpx.post(url, json=BODY, headers=headers), 403, "PERMISSION_DENIED")
    allowed, other = gateway.new_key()
    malformed = httpx.post(url, content=b"{not json", headers={"x-goog-api-key": allowed})
    assert_gemini_error(malformed, 400, "INVALID_ARGUMENT")
    huge = {"contents": [{"parts": [{"text": "x" * 70_000}]}]}
    assert_gemini_error(httpx.post(url, json=huge, headers={"x-goog-api-key": allowed}), 413, "INVALID_ARGUMENT")
    assert gateway.events_of(key["id"]) == gateway.events_of(other["id"]) == []


def test_upstream_500_passes_through_and_is_recorded_once(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    headers = {"x-goog-api-key": secret, "x-mock-status": "500"}
    response = httpx.post(generate_url(gateway, "gemini-2.5-flash"), json=BODY, headers=headers)
    assert assert_gemini_error(response, 500, "INTERNAL") == "An internal error has occurred. (farebox mock)"
    (event,) = gateway.events_of(key["id"])
    assert (event["status"], event["http_status"], event["error_type"]) == ("error", 500, "INTERNAL")
    assert (event["input_tokens"], event["output_tokens"], event["cost_nano"]) == (0, 0, 0)
    assert event["id"] == response.headers["x-farebox-request-id"]


def test_upstream_drop_mid_stream_keeps_the_reported_input_and_estimates(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    headers = {"x-goog-api-key": secret, "x-mock-drop-after": "3"}
    url = generate_url(gateway, "gemini-2.5-flash", stream=True)
    with httpx.stream("POST", url, params={"alt": "sse"}, json=BODY, headers=headers) as response:
        documents = sse_documents(response.iter_lines())
    assert len(documents) == 3 and not any("finishReason" in doc["candidates"][0] for doc in documents)
    (event,) = gateway.wait_events(key["id"], 1)
    assert (event["estimated"], event["status"], event["error_type"]) == (1, "error", "upstream_disconnected")
    assert event["input_tokens"] == documents[-1]["usageMetadata"]["promptTokenCount"]
    assert event["output_tokens"] == 3


def test_client_disconnect_mid_stream_records_one_estimated_event(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    url = generate_url(gateway, "slow-gemini", stream=True)
    with httpx.stream("POST", url, params={"alt": "sse"}, json=BODY, headers={"x-goog-api-key": secret}) as response:
        assert response.status_code == 200
        received = b""
        for chunk in response.iter_raw():
            received += chunk
            if received.count(b"\r\n\r\n") >= 3:
                break  # leave after a few events: the slow mock sends one every 50 ms
    (event,) = gateway.wait_events(key["id"], 1)
    assert (event["estimated"], event["streamed"]) == (1, 1)
    assert (event["status"], event["error_type"]) == ("error", "client_disconnected")
    assert event["input_tokens"] > 0 and 1 <= event["output_tokens"] < 20
    assert len(gateway.wait_events(key["id"], 2, timeout=0.3)) == 1


def gemini_sdk(gateway: Gateway, secret: str, *, async_client: httpx.AsyncClient | None = None) -> genai.Client:
    """The SDK on farebox, without retries; async over `async_client` (its aiohttp path warns on aiohttp 3.14)."""
    options = types.HttpOptions(
        base_url=gateway.url,
        api_version="v1beta",
        retry_options=types.HttpRetryOptions(attempts=1),
        httpx_async_client=async_client,
    )
    return genai.Client(api_key=secret, http_options=options)


def test_sdk_with_only_a_base_url_reaches_farebox(gateway: Gateway) -> None:
    # Given a base_url and no api_version, the SDK calls /v1/models/...: a newcomer's first call must work.
    secret, key = gateway.new_key()
    options = types.HttpOptions(base_url=gateway.url, retry_options=types.HttpRetryOptions(attempts=1))
    sdk = genai.Client(api_key=secret, http_options=options)
    reply = sdk.models.generate_content(model="gemini-2.5-flash", contents="hello")
    streamed = list(sdk.models.generate_content_stream(model="gemini-2.5-flash", contents="hello"))
    assert reply.usage_metadata is not None and streamed[-1].usage_metadata is not None
    events = gateway.wait_events(key["id"], 2)
    assert sorted(bool(event["streamed"]) for event in events) == [False, True]
    assert all(event["operation"] == "generate_content" and not event["estimated"] for event in events)
    assert events[0]["output_tokens"] == reply.usage_metadata.candidates_token_count


def test_sdk_generate_content_and_stream_are_recorded_exactly(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    config = types.GenerateContentConfig(max_output_tokens=6)
    with gemini_sdk(gateway, secret) as sdk:
        answer = sdk.models.generate_content(model="gemini-2.5-flash", contents="Count the fares", config=config)
        chunks = list(sdk.models.generate_content_stream(model="gemini-2.5-flash", contents="Again", config=config))
    by_streamed = {event["streamed"]: event for event in gateway.events_of(key["id"])}
    answer_event, stream_event = by_streamed[0], by_streamed[1]
    assert answer.usage_metadata is not None and answer.usage_metadata.candidates_token_count == 6
    assert (answer_event["input_tokens"], answer_event["output_tokens"]) == (
        answer.usage_metadata.prompt_token_count,
        6,
    )
    final = chunks[-1].usage_metadata
    assert final is not None and len(chunks) == 6
    assert (stream_event["input_tokens"], stream_event["output_tokens"]) == (final.prompt_token_count, 6)
    assert stream_event["streamed"] == 1 and stream_event["estimated"] == 0
    assert format_usd(stream_event["cost_nano"]) == expected_cost(final.model_dump(by_alias=True, exclude_none=True))


@pytest.mark.anyio
async def test_sdk_async_stream(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    async with httpx.AsyncClient() as http, gemini_sdk(gateway, secret, async_client=http).aio as sdk:
        stream = await sdk.models.generate_content_stream(model="gemini-2.5-flash", contents="Count the fares")
        chunks = [chunk async for chunk in stream]
    (event,) = await anyio.to_thread.run_sync(gateway.events_of, key["id"])
    assert chunks[-1].usage_metadata is not None
    assert (event["output_tokens"], event["streamed"]) == (chunks[-1].usage_metadata.candidates_token_count, 1)


def test_sdk_sees_its_own_error_types(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    with gemini_sdk(gateway, "fbx_sk_not-a-real-key") as stranger, gemini_sdk(gateway, secret) as sdk:
        with pytest.raises(errors.ClientError) as unauthenticated:
            stranger.models.generate_content(model="gemini-2.5-flash", contents="x")
        with pytest.raises(errors.ClientError) as not_found:
            sdk.models.generate_content(model="slow-gpt", contents="x")
        server_error = types.GenerateContentConfig(http_options=types.HttpOptions(headers={"x-mock-status": "500"}))
        with pytest.raises(errors.ServerError) as internal:
            sdk.models.generate_content(model="gemini-2.5-flash", contents="x", config=server_error)
    assert (unauthenticated.value.code, unauthenticated.value.status) == (401, "UNAUTHENTICATED")
    assert (not_found.value.code, not_found.value.status) == (404, "NOT_FOUND")
    assert (internal.value.code, internal.value.status) == (500, "INTERNAL")
    (event,) = gateway.events_of(key["id"])
    assert (event["status"], event["http_status"]) == ("error", 500)
