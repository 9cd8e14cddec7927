"""OpenAI's Responses API (`POST /v1/responses`) through the gateway with the official `openai` SDK.

Each answer's ledger event must carry exactly the tokens the mock reported, cached and reasoning tokens
included, and cost exactly the catalog price: gpt-4o-mini at $0.15 per million input tokens, $0.075 per
million cached input tokens and $0.60 per million output tokens (reasoning tokens are output), kept here in
nano-USD per token independently of the price book.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import openai
import orjson
import pytest
from openai.types.responses import ResponseUsage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from farebox.app import create_app
from farebox.core.money import format_usd
from farebox.settings import Settings

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway, ServerThread

INPUT, CACHED_INPUT, OUTPUT = 150, 75, 600
"""gpt-4o-mini's catalog prices, nano-USD per token."""
INSTRUCTIONS = "Answer in one sentence."
QUESTION = "What does a fare box do?"


def client(gateway: Gateway, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)


def cost(usage: ResponseUsage) -> int:
    cached = usage.input_tokens_details.cached_tokens
    return (usage.input_tokens - cached) * INPUT + cached * CACHED_INPUT + usage.output_tokens * OUTPUT


def assert_event(event: dict[str, Any], usage: ResponseUsage, *, streamed: bool) -> None:
    assert (event["operation"], event["axis"], event["model"], event["streamed"]) == (
        "responses",
        "llm",
        "gpt-4o-mini",
        streamed,
    )
    assert (event["input_tokens"], event["cached_input_tokens"]) == (
        usage.input_tokens,
        usage.input_tokens_details.cached_tokens,
    )
    assert (event["output_tokens"], event["reasoning_tokens"]) == (
        usage.output_tokens,
        usage.output_tokens_details.reasoning_tokens,
    )
    assert event["cost_usd"] == format_usd(cost(usage))
    assert (event["status"], event["http_status"], event["estimated"], event["priced"]) == ("ok", 200, False, True)


def test_a_response_is_recorded_with_cached_and_reasoning_tokens_at_the_catalog_price(gateway: Gateway) -> None:
    secret, key = gateway.new_key(spend_cap="5.00")
    headers = {"x-mock-cached-tokens": "6", "x-mock-reasoning-tokens": "40"}
    with client(gateway, secret) as sdk:
        raw = sdk.responses.with_raw_response.create(
            model="gpt-4o-mini", instructions=INSTRUCTIONS, input=QUESTION, extra_headers=headers
        )
    answer = raw.parse()
    assert answer.status == "completed" and answer.output_text
    usage = answer.usage
    assert usage is not None
    assert (usage.input_tokens_details.cached_tokens, usage.output_tokens_details.reasoning_tokens) == (6, 40)
    event = gateway.event(raw.headers["x-farebox-request-id"])  # committed before the body was sent
    assert_event(event, usage, streamed=False)
    assert event["key_id"] == key["id"]
    assert raw.headers["x-farebox-cost-usd"] == format_usd(cost(usage))
    assert raw.headers["x-credits-remaining"] == format_usd(5 * 10**9 - cost(usage))


def test_a_streamed_response_is_recorded_from_response_completed(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    headers = {"x-mock-cached-tokens": "2", "x-mock-reasoning-tokens": "8"}
    with (
        client(gateway, secret) as sdk,
        sdk.responses.with_streaming_response.create(
            model="gpt-4o-mini", input=QUESTION, stream=True, extra_headers=headers
        ) as response,
    ):
        request_id = response.headers["x-farebox-request-id"]
        events = list(response.parse())
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]  # narrowed by the type asserted above
    assert final.output_text == text and final.usage is not None
    event = gateway.event(request_id)
    assert_event(event, final.usage, streamed=True)
    assert event["ttft_ms"] is not None
    assert len(gateway.events_of(key["id"])) == 1


def test_the_event_is_committed_before_response_completed_reaches_the_client(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    body = {"model": "gpt-4o-mini", "input": QUESTION, "stream": True}
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.stream("POST", f"{gateway.url}/v1/responses", json=body, headers=headers, timeout=10) as response:
        request_id = response.headers["x-farebox-request-id"]
        for line in response.iter_lines():
            if line == "event: response.completed":
                assert gateway.event(request_id)["output_tokens"] == 20
                break
        else:
            pytest.fail("the stream ended without response.completed")


def test_max_output_tokens_bounds_the_answer_and_is_what_the_event_records(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    with client(gateway, secret) as sdk:
        raw = sdk.responses.with_raw_response.create(
            model="gpt-4o-mini",
            input=QUESTION,
            max_output_tokens=16,
            extra_headers={"x-mock-output-tokens": "500", "x-mock-reasoning-tokens": "6"},
        )
    answer = raw.parse()
    assert answer.status == "incomplete" and answer.usage is not None and answer.usage.output_tokens == 16
    event = gateway.event(raw.headers["x-farebox-request-id"])
    assert (event["output_tokens"], event["reasoning_tokens"]) == (16, 6)


def test_a_cap_that_cannot_cover_the_worst_case_refuses_with_402_and_forwards_nothing(gateway: Gateway) -> None:
    # Worst case: the input's bytes plus 4,096 output tokens (no limit set: the default) at $0.60 per million,
    # about $0.0025; or 10,000 when the request says so. The cap is $0.002.
    secret, key = gateway.new_key(spend_cap="0.002")
    with client(gateway, secret) as sdk:
        for limit in (None, 10_000):
            with pytest.raises(openai.APIStatusError) as refused:
                sdk.responses.create(
                    model="gpt-4o-mini", input=QUESTION, **({"max_output_tokens": limit} if limit else {})
                )
            assert refused.value.status_code == 402
            assert refused.value.code == "budget_exceeded" and refused.value.type == "insufficient_quota"
        assert sdk.responses.create(model="gpt-4o-mini", input=QUESTION, max_output_tokens=100).status == "completed"
    assert len(gateway.events_of(key["id"])) == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"max_output_tokens": 0}, "integer_below_min_value"),
        ({"max_output_tokens": 15}, "integer_below_min_value"),
        ({"max_output_tokens": "lots"}, "invalid_type"),
        ({"background": True}, "unsupported_parameter"),
    ],
)
def test_what_openai_would_refuse_or_farebox_cannot_meter_is_a_400_before_forwarding(
    gateway: Gateway, fields: dict[str, Any], code: str
) -> None:
    secret, key = gateway.new_key()
    with client(gateway, secret) as sdk, pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="gpt-4o-mini", input=QUESTION, extra_body=fields)
    assert refused.value.code == code and refused.value.type == "invalid_request_error"
    assert gateway.events_of(key["id"]) == []


def test_an_upstream_error_passes_through_in_openai_s_shape_and_is_recorded(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    with client(gateway, secret) as sdk, pytest.raises(openai.RateLimitError) as raised:
        sdk.responses.create(model="gpt-4o-mini", input=QUESTION, extra_headers={"x-mock-status": "429"})
    assert raised.value.body == {
        "message": "Rate limit reached for requests (farebox mock).",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    request_id = raised.value.response.headers["x-farebox-request-id"]
    event = gateway.event(request_id)
    assert (event["status"], event["http_status"], event["error_type"], event["cost_usd"]) == (
        "error",
        429,
        "rate_limit_error",
        "0.00",
    )
    assert [row["id"] for row in gateway.events_of(key["id"])] == [request_id]


def test_a_stream_cut_short_is_recorded_once_estimated(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    headers = {"x-mock-drop-after": "8"}  # created, in_progress, the message opened, 4 words
    with (
        client(gateway, secret) as sdk,
        sdk.responses.with_streaming_response.create(
            model="gpt-4o-mini", input=QUESTION, stream=True, extra_headers=headers
        ) as response,
    ):
        events = list(response.parse())
    assert events[-1].type == "response.output_text.delta"
    [event] = gateway.wait_events(key["id"], 1)
    assert (event["status"], event["error_type"], event["estimated"]) == ("error", "upstream_disconnected", 1)
    assert event["output_tokens"] == 4 and event["input_tokens"] > 0


def _failing_upstream(usage: dict[str, Any]) -> Starlette:
    """An OpenAI-compatible upstream whose every response streams two words, then `response.failed`."""

    def event(kind: str, **fields: Any) -> bytes:
        return f"event: {kind}\ndata: ".encode() + orjson.dumps({"type": kind, **fields}) + b"\n\n"

    async def responses(request: Request) -> StreamingResponse:
        head = {"id": "resp_1", "object": "response", "model": "gpt-4o-mini", "output": [], "usage": None}

        async def events() -> AsyncIterator[bytes]:
            yield event("response.created", sequence_number=0, response={**head, "status": "in_progress"})
            for number, word in enumerate(["Half", " an"], start=1):
                yield event("response.output_text.delta", sequence_number=number, item_id="msg_1", delta=word)
            error = {"code": "server_error", "message": "The model failed to generate a response."}
            failed = {**head, "status": "failed", "error": error, "usage": usage}
            yield event("response.failed", sequence_number=3, response=failed)

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/responses", responses, methods=["POST"])])


def test_a_response_that_fails_mid_stream_is_recorded_as_an_error_with_its_usage(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    port_factory: Callable[[], int],
    server_thread: type[ServerThread],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(f"FAREBOX_{name.upper()}", raising=False)
    usage = {
        "input_tokens": 9,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 11,
    }
    upstream_port, port = port_factory(), port_factory()
    model = {
        "name": "flaky-gpt",
        "provider": "openai_compatible",
        "upstream_model": "gpt-4o-mini",
        "base_url": f"http://127.0.0.1:{upstream_port}/v1",
        "price_as": "openai/gpt-4o-mini",
    }
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", port=port, models=[model])  # type: ignore[list-item]
    master = "fbx_master_responses-e2e-0123456789"
    url = f"http://127.0.0.1:{port}"
    with (
        server_thread(_failing_upstream(usage), upstream_port),
        server_thread(create_app(settings, master_key=master), port),
    ):
        admin = {"Authorization": f"Bearer {master}"}
        account = httpx.post(f"{url}/api/admin/accounts", json={"name": "acme"}, headers=admin).json()
        key = httpx.post(
            f"{url}/api/admin/virtual-keys", json={"account_id": account["id"], "name": "k"}, headers=admin
        ).json()
        with (
            openai.OpenAI(base_url=f"{url}/v1", api_key=key["key"], max_retries=0) as sdk,
            sdk.responses.with_streaming_response.create(model="flaky-gpt", input="hi", stream=True) as response,
        ):
            request_id = response.headers["x-farebox-request-id"]
            kinds = [event.type for event in response.parse()]
        event = httpx.get(f"{url}/api/admin/requests/{request_id}", headers=admin).json()
    assert kinds[-1] == "response.failed"  # passed on, once its event was committed
    assert (event["status"], event["http_status"], event["error_type"]) == ("error", 200, "server_error")
    assert (event["input_tokens"], event["output_tokens"], event["estimated"]) == (9, 2, False)
    assert event["cost_usd"] == format_usd(9 * INPUT + 2 * OUTPUT)
