"""`GET /metrics` as Prometheus scrapes it: a chat completion through the OpenAI SDK moves the request, token and
cost counters of its provider and model by exactly what the ledger recorded, and the commit histograms; a cap's
refusal is counted by scope; the webhook backlog is read at scrape time; `metrics_token` guards it.
(The sums of `farebox serve --workers N`'s processes are in `test_scale_out.py`.)"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import openai
import pytest
from scrape import scrape, value

from farebox.app import create_app
from farebox.core.money import parse_usd
from farebox.settings import Settings

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway


def test_a_chat_completion_moves_the_counters_by_what_the_ledger_recorded(gateway: Gateway) -> None:
    secret, key = gateway.new_key(spend_cap="0.00002")
    before = scrape(httpx.get(f"{gateway.url}/metrics").text)
    sdk = openai.OpenAI(api_key=secret, base_url=f"{gateway.url}/v1", max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], max_tokens=20
    )
    with pytest.raises(openai.APIStatusError) as refused:  # the cap cannot take a second one
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], max_tokens=20)
    assert refused.value.status_code == 402
    answer = httpx.get(f"{gateway.url}/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    after = scrape(answer.text)
    event = gateway.event(raw.headers["x-farebox-request-id"])
    model = {"provider": "mock", "model": "gpt-4o-mini"}

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("farebox_requests_total", **model, status="ok") == 1
    assert moved("farebox_tokens_total", **model, kind="input") == event["input_tokens"]
    assert moved("farebox_tokens_total", **model, kind="output") == event["output_tokens"]
    assert moved("farebox_cost_nano_usd_total", **model) == parse_usd(event["cost_usd"]) > 0
    assert moved("farebox_ledger_commit_seconds_count") >= 1
    assert moved("farebox_ledger_commit_events_sum") >= 1
    assert moved("farebox_reservations_refused_total", scope="key") == 1
    assert value(after, "farebox_webhook_backlog") >= 0 and ("farebox_ledger_queue_depth", frozenset()) in after
    assert not any(name == "farebox_redis_up" for name, _labels in after), "no Redis: no Redis gauge"


@pytest.mark.anyio
async def test_metrics_token_guards_the_scrape(tmp_path: Path) -> None:
    token = "a-metrics-token-0123456789"
    settings = Settings(database_url=f"sqlite:///{tmp_path}/ledger.db", metrics_token=token)
    app = create_app(settings, master_key="fbx_master_metrics-0123456789", secret_key="s" * 40)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://farebox") as client:
            for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": token}):
                refused = await client.get("/metrics", headers=headers)
                assert refused.status_code == 401, headers
                assert refused.json()["error"]["code"] == "invalid_api_key"
            answer = await client.get("/metrics", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and "farebox_webhook_backlog 0.0" in answer.text
