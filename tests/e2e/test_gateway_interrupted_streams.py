"""Streams cut short: by the client, or by the upstream (a clean early end, or an aborted connection).

Each leaves exactly one event, flagged estimated: input counted from the request (or taken from what the
provider had reported), output counted from the text streamed so far.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

MESSAGES: list[Any] = [{"role": "user", "content": "Tell a long story"}]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "slow-gpt", "messages": MESSAGES, "stream": True}),
        ("/v1/messages", {"model": "slow-claude", "messages": MESSAGES, "stream": True, "max_tokens": 20}),
    ],
)
def test_client_disconnect_mid_stream_records_one_estimated_event(
    gateway: Gateway, path: str, body: dict[str, Any]
) -> None:
    secret, key = gateway.new_key()
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.stream("POST", f"{gateway.url}{path}", json=body, headers=headers) as response:
        assert response.status_code == 200
        received = b""
        for chunk in response.iter_raw():
            received += chunk
            if received.count(b"\n\n") >= 3:
                break  # leave after a few events: the upstream sends one every 50 ms
    (event,) = gateway.wait_events(key["id"], 1)
    assert event["estimated"] == 1 and event["streamed"] == 1
    assert (event["status"], event["error_type"]) == ("error", "client_disconnected")
    assert event["input_tokens"] > 0 and 1 <= event["output_tokens"] < 20
    assert event["cost_nano"] > 0
    assert len(gateway.wait_events(key["id"], 2, timeout=0.3)) == 1


@pytest.mark.parametrize("mode", ["clean", "abort"])
def test_upstream_drop_mid_stream_records_one_estimated_event(gateway: Gateway, mode: str) -> None:
    secret, key = gateway.new_key()
    drop = {"x-mock-drop-after": "4", "x-mock-drop-mode": mode}
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0) as sdk:
        stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=drop)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "The quick brown"  # role chunk + 3 words, then the upstream went away
    (event,) = gateway.wait_events(key["id"], 1)
    assert (event["estimated"], event["status"], event["error_type"]) == (1, "error", "upstream_disconnected")
    assert event["output_tokens"] == 3 and event["input_tokens"] > 0


def test_anthropic_drop_keeps_the_reported_input_and_estimates_the_output(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    body = {"model": "claude-sonnet-4-6", "messages": MESSAGES, "stream": True, "max_tokens": 20}
    headers = {"x-api-key": secret, "x-mock-drop-after": "8"}
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=body, headers=headers) as response:
        streamed = response.read()
    assert b"message_stop" not in streamed
    reference = httpx.post(f"{gateway.url}/v1/messages", json={**body, "stream": False}, headers={"x-api-key": secret})
    (dropped, _) = gateway.wait_events(key["id"], 2)
    assert dropped["estimated"] == 1 and dropped["error_type"] == "upstream_disconnected"
    assert dropped["input_tokens"] == reference.json()["usage"]["input_tokens"]
    assert dropped["output_tokens"] == 5  # message_start, block start, ping, then 5 words
