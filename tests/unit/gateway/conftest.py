"""Fixtures of the gateway unit tests: recorded provider responses, byte splitting, the mock provider and SDKs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anthropic
import httpx
import httpx2
import openai
import pytest
from starlette.types import ASGIApp

from farebox.gateway.providers.mock import create_mock_app

FIXTURES = Path(__file__).parent / "fixtures"


def read_fixture(name: str) -> bytes:
    """The bytes of a file under `fixtures/`."""
    return (FIXTURES / name).read_bytes()


def splits(data: bytes) -> Iterator[list[bytes]]:
    """`data` cut in two at every byte boundary, then one byte at a time."""
    for cut in range(len(data) + 1):
        yield [data[:cut], data[cut:]]
    yield [data[i : i + 1] for i in range(len(data))]


@pytest.fixture
def fixture_bytes() -> Callable[[str], bytes]:
    """`fixture_bytes(name)`: the bytes of a recorded provider response."""
    return read_fixture


@pytest.fixture
def byte_splits() -> Callable[[bytes], Iterator[list[bytes]]]:
    """`byte_splits(data)`: `data` cut in two at every byte boundary, then one byte at a time."""
    return splits


# --- the mock provider, reached in-process through ASGI transports ---------------------------------


@pytest.fixture
def mock_app() -> ASGIApp:
    """A mock provider with no delays and a seeded random source."""
    return create_mock_app(seed=7)


@pytest.fixture
async def raw_client(mock_app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client on the mock, based at `/mock`."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mock_app), base_url="http://mock/mock") as client:
        yield client


@pytest.fixture
async def openai_client(mock_app: ASGIApp) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official OpenAI SDK pointed at the mock (no retries, so errors surface at once)."""
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=mock_app))
    client = openai.AsyncOpenAI(
        api_key="sk-mock", base_url="http://mock/mock/openai/v1", http_client=http, max_retries=0
    )
    async with client:
        yield client


@pytest.fixture
async def anthropic_client(mock_app: ASGIApp) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The official Anthropic SDK pointed at the mock (no retries)."""
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=mock_app))
    client = anthropic.AsyncAnthropic(
        api_key="sk-ant-mock", base_url="http://mock/mock/anthropic", http_client=http, max_retries=0
    )
    async with client:
        yield client
