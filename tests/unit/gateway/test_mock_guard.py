"""A mock given a key answers only requests that carry it; everyone else gets the SDK's own 401."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import httpx
import httpx2
import openai
import pytest

from farebox.gateway.providers import gemini
from farebox.gateway.providers.mock import create_mock_app
from farebox.gateway.providers.mock.media import PNG_1X1
from farebox.gateway.upstream import MOCK_KEY_HEADER

pytestmark = pytest.mark.anyio

KEY = "per-process-key"
MESSAGES: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
GUARDED = create_mock_app(key=KEY)


@pytest.fixture
async def raw() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=GUARDED), base_url="http://mock/mock") as client:
        yield client


def sdk_http() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=GUARDED))


@pytest.mark.parametrize("headers", [{}, {MOCK_KEY_HEADER: "per-process-kez"}, {MOCK_KEY_HEADER: ""}])
async def test_the_openai_sdk_without_the_key_is_unauthenticated(headers: dict[str, str]) -> None:
    client = openai.AsyncOpenAI(
        api_key="sk-any", base_url="http://mock/mock/openai/v1", http_client=sdk_http(), max_retries=0,
        default_headers=headers,
    )  # fmt: skip
    async with client:
        with pytest.raises(openai.AuthenticationError, match="x-farebox-mock-key"):
            await client.embeddings.create(model="text-embedding-3-small", input="hello")


async def test_the_openai_sdk_with_the_key_is_answered() -> None:
    client = openai.AsyncOpenAI(
        api_key="sk-any", base_url="http://mock/mock/openai/v1", http_client=sdk_http(), max_retries=0,
        default_headers={MOCK_KEY_HEADER: KEY},
    )  # fmt: skip
    async with client:
        embedded = await client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert len(embedded.data[0].embedding) == 1536


async def test_the_anthropic_sdk_without_the_key_gets_its_own_error_shape() -> None:
    client = anthropic.AsyncAnthropic(
        api_key="sk-ant-any", base_url="http://mock/mock/anthropic", http_client=sdk_http(), max_retries=0
    )
    async with client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES)
    assert isinstance(caught.value.body, dict) and caught.value.body["error"]["type"] == "authentication_error"


async def test_gemini_paths_answer_in_gemini_s_shape(raw: httpx.AsyncClient) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    refused = await raw.post("/gemini/v1beta/models/gemini-2.5-flash:generateContent", json=body)
    assert refused.status_code == 401
    assert refused.json() == gemini.error_body(401, refused.json()["error"]["message"])
    served = await raw.post(
        "/gemini/v1beta/models/gemini-2.5-flash:generateContent", json=body, headers={MOCK_KEY_HEADER: KEY}
    )
    assert served.status_code == 200 and "usageMetadata" in served.json()


async def test_the_image_file_answers_link_to_is_public(raw: httpx.AsyncClient) -> None:
    image = await raw.get("/openai/v1/images/mock.png")
    assert image.status_code == 200 and image.content == PNG_1X1
    assert (await raw.get("/openai/v1/models")).status_code == 401


async def test_without_a_key_the_mock_is_open() -> None:
    transport = httpx.ASGITransport(app=create_mock_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://mock/mock") as client:
        assert (await client.get("/openai/v1/models")).status_code == 200
