"""`/v1/messages` with the official `anthropic` SDK, streaming and not, over loopback HTTP.

The test server routes `claude-sonnet-4-6` (not the default `claude-sonnet-4-5`, which anthropic 2.12
flags with a DeprecationWarning, an error under this suite's `filterwarnings`) to the mock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anthropic
import anyio
import pytest

from farebox.core.money import format_usd

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

pytestmark = pytest.mark.anyio

SONNET = (3_000, 15_000, 300, 3_750)
"""claude-sonnet-4-6 in nano-USD per token: input, output, cache read, cache write ($3, $15, $0.30, $3.75 / M)."""
MESSAGES: list[Any] = [{"role": "user", "content": "Count the fares"}]


def claude(gateway: Gateway, secret: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=secret, max_retries=0)


def expected_cost(usage: Any) -> str:
    fresh = usage.input_tokens
    read = usage.cache_read_input_tokens or 0
    write = usage.cache_creation_input_tokens or 0
    return format_usd(fresh * SONNET[0] + usage.output_tokens * SONNET[1] + read * SONNET[2] + write * SONNET[3])


def test_message_with_cache_tokens_is_recorded_exactly(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    cache = {"x-mock-cached-tokens": "3", "x-mock-cache-write-tokens": "2"}
    with claude(gateway, secret) as sdk:
        raw = sdk.messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=12, messages=MESSAGES, extra_headers=cache
        )
    usage = raw.parse().usage
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens, usage.output_tokens) == (3, 2, 12)
    event = gateway.event(raw.headers["x-farebox-request-id"])
    total_input = usage.input_tokens + 3 + 2
    assert (event["input_tokens"], event["cached_input_tokens"], event["cache_write_tokens"]) == (total_input, 3, 2)
    assert event["output_tokens"] == 12 and event["operation"] == "messages" and event["key_id"] == key["id"]
    assert event["cost_usd"] == raw.headers["x-farebox-cost-usd"] == expected_cost(usage)
    assert event["estimated"] is False


def test_streamed_message_is_recorded_before_the_sdk_returns(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    with (
        claude(gateway, secret) as sdk,
        sdk.messages.with_streaming_response.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES, stream=True
        ) as response,
    ):
        request_id = response.headers["x-farebox-request-id"]
        events = list(response.parse())
    assert events[-1].type == "message_stop"
    final = next(event for event in events if event.type == "message_delta")
    start = next(event for event in events if event.type == "message_start")
    event = gateway.event(request_id)
    assert (event["input_tokens"], event["output_tokens"]) == (start.message.usage.input_tokens, 8)
    assert final.usage.output_tokens == 8
    assert event["streamed"] is True and event["estimated"] is False and event["ttft_ms"] is not None
    assert event["cost_usd"] == format_usd(start.message.usage.input_tokens * SONNET[0] + 8 * SONNET[1])


async def test_async_stream_helper(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key=secret, max_retries=0) as sdk:
        async with sdk.messages.stream(model="claude-sonnet-4-6", max_tokens=6, messages=MESSAGES) as stream:
            message = await stream.get_final_message()
    (event,) = await anyio.to_thread.run_sync(gateway.events_of, key["id"])
    assert (event["input_tokens"], event["output_tokens"]) == (message.usage.input_tokens, 6)
    assert event["streamed"] == 1 and event["estimated"] == 0


def test_anthropic_provider_gets_its_credential_and_version(gateway: Gateway) -> None:
    """`slow-claude` is an `anthropic` route to a second mock: farebox sends x-api-key and anthropic-version."""
    secret, key = gateway.new_key()
    with claude(gateway, secret) as sdk:
        message = sdk.messages.create(model="slow-claude", max_tokens=3, messages=MESSAGES)
    assert message.usage.output_tokens == 3
    (event,) = gateway.events_of(key["id"])
    assert (event["provider"], event["model"], event["output_tokens"]) == ("anthropic", "slow-claude", 3)
