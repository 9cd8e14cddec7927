"""The dashboard's other pages as people use them: the analytics charts' tabs and toggle, a key created, rotated,
capped and revoked with its effect on the proxy (the `openai` SDK), member analytics by role and plan, the live
view catching a request, and signing in and out as a member."""

from __future__ import annotations

import csv
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from dashboard_browser import Dashboard, screenshot, serious_violations, sign_in_as_member, sign_in_as_operator
from playwright.sync_api import Browser, Page

NORTHWIND = "Northwind Analytics"
TINY = "Tiny Tools"


def _ask(dashboard: Dashboard, secret: str) -> None:
    """One chat completion through farebox with the `openai` SDK, as the key's holder makes it."""
    with openai.OpenAI(base_url=f"{dashboard.url}/v1", api_key=secret, max_retries=0) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])


def _secret(page: Page) -> str:
    """The secret the page shows once, in its dialog."""
    page.wait_for_selector("#secret-dialog[open]")
    return page.locator("#secret").input_value()


def _go(page: Page, dashboard: Dashboard, path: str) -> None:
    page.goto(f"{dashboard.url}{path}")
    page.wait_for_selector("body[data-ready=true]")


def test_the_analytics_tabs_and_the_canonical_toggle_follow_the_api(page: Page, dashboard: Dashboard) -> None:
    account = dashboard.account(NORTHWIND)["id"]
    sign_in_as_operator(page, dashboard)
    first, last = dashboard.demo["from"][:10], dashboard.demo["to"][:10]
    _go(page, dashboard, f"/dashboard/analytics?account_id={account}&from={first}&to={last}")
    ranged = {"account_id": account, "from": first, "to": last}
    ranking = dashboard.api.get("/api/analytics/models", params=ranged).json()
    chart = page.locator("#models-ranking")
    assert (chart.get_attribute("data-models") or "").split(",") == [row["model"] for row in ranking["data"]]
    page.locator("[data-chart=models-ranking]").get_by_role("tab", name="Requests").click()
    by_requests = sorted(ranking["data"], key=lambda row: -row["requests"])
    assert chart.get_attribute("data-measure") == "requests"
    assert [Decimal(r["requests"]) for r in by_requests] == sorted(
        (Decimal(r["requests"]) for r in ranking["data"]), reverse=True
    )
    assert (chart.get_attribute("data-models") or "").split(",")[0] == by_requests[0]["model"]
    for row in ranking["data"]:
        cell = page.locator(f"#models-ranking-table tr[data-model='{row['model']}'] .cost")
        assert cell.get_attribute("data-exact") == row["cost"]

    over_time = page.locator("#models-time")
    page.locator("[data-chart=models-time]").get_by_role("tab", name="Tokens").click()
    assert over_time.get_attribute("data-measure") == "tokens"
    page.get_by_label("Mappings").check()
    page.wait_for_selector("#models-time[data-view=mappings]")
    mappings = dashboard.api.get(
        "/api/analytics/models/over-time", params=ranged | {"view": "mappings", "grain": "day"}
    ).json()
    assert (over_time.get_attribute("data-models") or "").split(",") == [line["model"] for line in mappings["series"]]
    screenshot(page, "analytics-desktop")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    lines = list(csv.reader(Path(download.value.path()).read_text().splitlines()))
    assert lines[0][:4] == ["model", "cost_usd", "requests", "tokens"]
    assert [(line[0], line[1], int(line[2])) for line in lines[1:]] == [
        (row["model"], row["cost"], row["requests"]) for row in ranking["data"]
    ], "the file holds what the view shows, exact"


def test_a_key_is_created_rotated_capped_and_revoked_and_the_proxy_follows(page: Page, dashboard: Dashboard) -> None:
    account = dashboard.account(NORTHWIND)["id"]
    sign_in_as_operator(page, dashboard)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    _go(page, dashboard, f"/dashboard/keys?account_id={account}")
    name = "nightly-batch"
    page.get_by_label("Name").fill(name)
    page.get_by_label("Spend cap (USD, optional)").fill("5")
    page.get_by_role("button", name="Create key").click()
    secret = _secret(page)
    assert secret.startswith("fbx_sk_")
    page.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.get_by_role("button", name="Done").click()
    _ask(dashboard, secret)

    row = page.locator("tr", has_text=name)
    page.get_by_role("button", name=f"Rotate {name}").click()
    page.get_by_role("button", name="Rotate", exact=True).click()
    rotated = _secret(page)
    assert rotated.startswith("fbx_sk_") and rotated != secret
    page.get_by_role("button", name="Done").click()
    with pytest.raises(openai.AuthenticationError):
        _ask(dashboard, secret)
    _ask(dashboard, rotated)

    page.get_by_role("button", name=f"Change cap of {name}").click()
    page.get_by_label("New cap (USD)").fill("0.000001")
    page.get_by_role("button", name="Save cap").click()
    page.wait_for_selector(f"tr:has-text('{name}') .cap[data-exact='0.000001']")
    with pytest.raises(openai.APIStatusError) as refused:
        _ask(dashboard, rotated)
    assert refused.value.status_code == 402, "over its new cap: refused before anything is forwarded"
    page.get_by_role("button", name=f"Change cap of {name}").click()
    page.get_by_label("New cap (USD)").fill("50")
    page.get_by_role("button", name="Save cap").click()
    page.wait_for_selector(f"tr:has-text('{name}') .cap[data-exact='50.00']")
    _ask(dashboard, rotated)
    screenshot(page, "keys-desktop")

    page.get_by_role("button", name=f"Revoke {name}").click()
    page.get_by_role("button", name="Revoke", exact=True).click()
    page.wait_for_selector(f"tr[data-status=revoked]:has-text('{name}')")
    assert row.get_by_role("button", name=f"Revoke {name}").count() == 0
    with pytest.raises(openai.AuthenticationError):
        _ask(dashboard, rotated)


def test_a_cancelled_confirmation_changes_nothing(page: Page, dashboard: Dashboard) -> None:
    account = dashboard.account(NORTHWIND)
    sign_in_as_operator(page, dashboard)
    _go(page, dashboard, f"/dashboard/keys?account_id={account['id']}")
    key = account["keys"][0]
    page.get_by_role("button", name=f"Revoke {key['name']}").click()
    page.get_by_role("button", name="Cancel").click()
    shown = dashboard.api.get(f"/api/admin/virtual-keys/{key['id']}").json()
    assert shown["status"] == "active"


def test_the_keys_and_the_live_view_download_what_they_show(page: Page, dashboard: Dashboard) -> None:
    account = dashboard.account(NORTHWIND)["id"]
    sign_in_as_operator(page, dashboard)
    for path, api_path, params, columns in [
        ("keys", "/api/admin/virtual-keys", {"account_id": account}, ("id", "spend_usd", "spend")),
        ("live", "/v1/usage/models", {"account_id": account}, ("model", "credits_used", "credits_used")),
    ]:
        _go(page, dashboard, f"/dashboard/{path}?account_id={account}")
        if path == "live":
            page.wait_for_selector("#models-table tbody tr")
        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").click()
        lines = list(csv.DictReader(Path(download.value.path()).read_text().splitlines()))
        first, value, field = columns
        answer = dashboard.api.get(api_path, params=params).json()["data"]
        assert {line[first]: line[value] for line in lines} == {row[first]: row[field] for row in answer}


def test_a_keys_statistics_page_shows_its_figures(page: Page, dashboard: Dashboard) -> None:
    account = dashboard.account(NORTHWIND)
    sign_in_as_operator(page, dashboard)
    _go(page, dashboard, f"/dashboard/keys?account_id={account['id']}")
    key = account["keys"][0]
    page.locator(f"#key-{key['id']}").get_by_role("link", name="View statistics").click()
    page.wait_for_selector("body[data-ready=true]")
    stats = dashboard.api.get(f"/api/analytics/keys/{key['id']}").json()
    assert page.locator("h1").inner_text() == f"Key {key['name']}"
    assert page.locator("#stat-cost").get_attribute("data-exact") == stats["summary"]["cost"]
    assert page.locator("#stat-requests").inner_text() == f"{stats['summary']['requests']:,}"
    models = (page.locator("#key-ranking").get_attribute("data-models") or "").split(",")
    assert models == [row["model"] for row in stats["models"]]
    screenshot(page, "key-desktop")


def _member(dashboard: Dashboard, account_name: str, role: str) -> dict[str, Any]:
    account = dashboard.account(account_name)
    member: dict[str, Any] = next(m for m in account["members"] if m["role"] == role)
    return member | {"account_id": account["id"]}


def test_members_by_plan_and_role(browser: Browser, dashboard: Dashboard) -> None:
    owner = _member(dashboard, NORTHWIND, "owner")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in_as_member(page, dashboard, owner)
    _go(page, dashboard, "/dashboard/members")
    answer = dashboard.api.get("/api/analytics/members", params={"account_id": owner["account_id"]}).json()
    rows = page.locator("#members-table tbody tr")
    assert [rows.nth(n).get_attribute("id") for n in range(rows.count())] == [
        f"member-{m['member_id']}" for m in answer["data"]
    ]
    top = answer["data"][0]
    assert page.locator(f"#member-{top['member_id']} .cost").get_attribute("data-exact") == top["cost"]
    screenshot(page, "members-desktop")
    page.get_by_role("link", name=top["name"]).click()
    page.wait_for_selector("body[data-ready=true]")
    detail = dashboard.api.get(
        f"/api/analytics/members/{top['member_id']}", params={"account_id": owner["account_id"]}
    ).json()
    assert page.locator("#stat-cost").get_attribute("data-exact") == detail["summary"]["cost"]
    assert page.locator("#most-used").inner_text().split("\n")[1] == detail["most_used"]["model"]
    screenshot(page, "member-desktop")
    context.close()

    for account_name, role, notice in [(TINY, "owner", "#upgrade"), (NORTHWIND, "member", "#denied")]:
        context = browser.new_context()
        page = context.new_page()
        sign_in_as_member(page, dashboard, _member(dashboard, account_name, role))
        _go(page, dashboard, "/dashboard/members")
        assert page.locator(notice).is_visible() and not page.locator("#members").is_visible()
        context.close()


def test_the_live_view_shows_a_request_within_two_seconds(page: Page, dashboard: Dashboard) -> None:
    account = dashboard.account(NORTHWIND)
    sign_in_as_operator(page, dashboard)
    _go(page, dashboard, f"/dashboard/live?account_id={account['id']}")
    before = int(page.locator("#today-requests").inner_text().replace(",", ""))
    _ask(dashboard, account["keys"][1]["secret"])
    asked = time.monotonic()
    page.wait_for_function(
        "(before) => Number(document.getElementById('today-requests').textContent.replace(/,/g, '')) > before",
        arg=before,
        timeout=2_000,
    )
    assert time.monotonic() - asked < 2
    usage = dashboard.api.get("/v1/usage", params={"account_id": account["id"]}).json()
    page.wait_for_function(
        "(total) => document.getElementById('month-requests').textContent.replace(/,/g, '') === String(total)",
        arg=usage["total_requests"],
        timeout=2_000,
    )
    screenshot(page, "live-desktop")


def test_a_member_signs_in_sees_its_own_keys_and_signs_out(page: Page, dashboard: Dashboard) -> None:
    member = _member(dashboard, NORTHWIND, "member")
    sign_in_as_member(page, dashboard, member)
    page.wait_for_selector("body[data-ready=true]")
    own = [k for k in dashboard.account(NORTHWIND)["keys"] if k["member_id"] == member["id"]]
    cards = page.locator("#key-cards .card")
    assert sorted(cards.nth(n).get_attribute("id") or "" for n in range(cards.count())) == sorted(
        f"key-{k['id']}" for k in own
    )
    assert page.locator("#account").count() == 0, "a member has no account picker"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/dashboard/sign-in")
    page.goto(f"{dashboard.url}/dashboard/keys")
    page.wait_for_url("**/dashboard/sign-in?next=%2Fdashboard%2Fkeys")


@pytest.mark.parametrize("path", ["usage", "analytics", "keys", "members", "live", "alerts"])
def test_every_page_reads_at_phone_width_with_no_serious_accessibility_violation(
    browser: Browser, dashboard: Dashboard, path: str
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, bypass_csp=True
    )  # bypass_csp: axe-core is injected into the page
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    sign_in_as_operator(page, dashboard)
    _go(page, dashboard, f"/dashboard/{path}?account_id={dashboard.account(NORTHWIND)['id']}")
    assert [url for url in asked if not url.startswith(dashboard.url)] == [], "the page asks no host but farebox"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, "nothing wider than the phone: wide tables scroll inside their own box"
    assert serious_violations(page) == []
    screenshot(page, f"{path}-phone")
    context.close()


def test_the_sign_in_page_has_no_serious_accessibility_violation(browser: Browser, dashboard: Dashboard) -> None:
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(f"{dashboard.url}/dashboard/sign-in")
    assert serious_violations(page) == []
    screenshot(page, "sign-in-desktop")
    context.close()
