"""The alerts page as on-call uses it: a threshold crossed by a real request shows with its evidence and a link to
its key, and a webhook delivery that failed is sent again from its delivery log."""

from __future__ import annotations

import csv
import socket
import time
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import openai
from dashboard_browser import Dashboard, screenshot, sign_in_as_operator
from playwright.sync_api import Page

NORTHWIND = "Northwind Analytics"


def _until(check: Callable[[], Any], what: str, seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {what}")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_crossed_threshold_and_a_failed_delivery_retried(page: Page, dashboard: Dashboard) -> None:
    account = dashboard.account(NORTHWIND)
    key = next(k for k in account["keys"] if k["spend_cap"] is not None)
    hook = dashboard.api.post(
        "/api/admin/webhooks",
        json={
            "account_id": account["id"],
            "url": f"http://127.0.0.1:{_closed_port()}/hook",
            "events": ["usage.threshold"],
        },
    )
    hook.raise_for_status()
    hook_id = hook.json()["id"]
    spent = Decimal(dashboard.api.get(f"/api/admin/virtual-keys/{key['id']}").json()["spend"])
    cap = (spent / Decimal("0.955")).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    dashboard.api.patch(f"/api/admin/virtual-keys/{key['id']}", json={"spend_cap": str(cap)}).raise_for_status()
    with openai.OpenAI(base_url=f"{dashboard.url}/v1", api_key=key["secret"], max_retries=0) as client:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], max_tokens=16
        )

    def fired() -> dict[str, Any] | None:
        history = dashboard.api.get(f"/api/admin/accounts/{account['id']}/alerts/history").json()["data"]
        return next((a for a in history if a["rule"] == "threshold:0.95" and a["scope_id"] == key["id"]), None)

    alert = _until(fired, "the 95% threshold of the key fires")
    deliveries = f"/api/admin/webhooks/{hook_id}/deliveries"
    failed = _until(
        lambda: [d for d in dashboard.api.get(deliveries).json()["data"] if d["status"] == "failed"],
        "the delivery to a closed port fails",
    )[0]

    sign_in_as_operator(page, dashboard)
    page.goto(f"{dashboard.url}/dashboard/alerts?account_id={account['id']}")
    page.wait_for_selector("body[data-ready=true]")
    row = page.locator(f"tr.fired[data-rule='threshold:0.95'][data-scope-id='{key['id']}']")
    assert row.locator("td.text").inner_text() == alert["text"]
    row.get_by_text("Evidence").click()
    assert row.locator(".evidence").inner_text().startswith(next(iter(alert["evidence"])))
    assert row.get_by_role("link", name="key").get_attribute("href") == f"/dashboard/keys/{key['id']}"
    screenshot(page, "alerts-desktop")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    lines = list(csv.DictReader(Path(download.value.path()).read_text().splitlines()))
    assert {"rule": "threshold:0.95", "scope_id": key["id"], "text": alert["text"]}.items() <= next(
        line for line in lines if line["rule"] == "threshold:0.95" and line["scope_id"] == key["id"]
    ).items()

    page.locator(f"#delivery-{failed['id']}").get_by_role("button", name="Retry").click()
    page.wait_for_selector("#status:has-text('is due again')")
    retried = _until(
        lambda: (
            next(d for d in dashboard.api.get(deliveries).json()["data"] if d["id"] == failed["id"])["attempts"] == 2
        ),
        "the retried delivery is attempted once more",
    )
    assert retried
