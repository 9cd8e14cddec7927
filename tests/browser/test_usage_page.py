"""`/dashboard/usage` (seed 000) as a person uses it: the key cards, the daily chart by model, the range and the
filters, and a bar segment clicked down to that day's requests — every figure equal to the API's for the range."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dashboard_browser import (
    Dashboard,
    screenshot,
    serious_violations,
    sign_in_as_operator,
)  # tests/browser/dashboard_browser.py
from playwright.sync_api import Browser, Page, Request

NORTHWIND = "Northwind Analytics"


def _open_usage(page: Page, dashboard: Dashboard, **params: str) -> None:
    sign_in_as_operator(page, dashboard)
    query = "&".join(f"{name}={value}" for name, value in params.items())
    page.goto(f"{dashboard.url}/dashboard/usage?{query}")
    page.wait_for_selector("body[data-ready=true]")


def _series(dashboard: Dashboard, **params: str) -> dict[str, Any]:
    answer = dashboard.api.get("/api/analytics/models/over-time", params={"grain": "day", **params})
    answer.raise_for_status()
    series: dict[str, Any] = answer.json()
    return series


def test_the_cards_and_the_chart_show_the_apis_figures(page: Page, dashboard: Dashboard) -> None:
    account = dashboard.account(NORTHWIND)
    _open_usage(page, dashboard, account_id=account["id"])
    keys = dashboard.api.get("/api/admin/virtual-keys", params={"account_id": account["id"]}).json()["data"]
    assert page.locator("#key-cards .card").count() == len(keys) >= len(account["keys"])
    for key in keys:
        card = page.locator(f"#key-{key['id']}")
        assert card.locator("h3").inner_text() == key["name"]
        assert card.locator(".spend").get_attribute("data-exact") == key["spend"]
        assert card.locator(".used").inner_text() == (
            "no cap" if key["percent_used"] is None else f"{key['percent_used']}%"
        )

    series = _series(dashboard, account_id=account["id"])
    total = sum(Decimal(cost) for line in series["series"] for cost in line["cost"])
    assert Decimal(page.locator("#range-total").get_attribute("data-exact") or "") == total
    assert page.locator("#from").input_value() == series["from"] and page.locator("#to").input_value() == series["to"]
    chart = page.locator("#daily-chart")
    assert chart.get_attribute("data-days") == str(len(series["buckets"]))
    assert (chart.get_attribute("data-models") or "").split(",") == [line["model"] for line in series["series"]]


def test_a_bar_segment_opens_that_days_requests_for_its_model(page: Page, dashboard: Dashboard) -> None:
    account = dashboard.account(NORTHWIND)
    _open_usage(page, dashboard, account_id=account["id"])
    series = _series(dashboard, account_id=account["id"])
    # The busiest day of a model whose bar segment is tall enough to click (a person cannot click a sliver either):
    # more requests than a page holds.
    heights = page.evaluate(
        """() => Chart.getChart("daily-chart").data.datasets.map((_, n) =>
            Chart.getChart("daily-chart").getDatasetMeta(n).data.map((bar) => bar.base - bar.y))"""
    )
    cells = [
        (line["requests"][d], n, d)
        for n, line in enumerate(series["series"])
        for d in range(len(series["buckets"]))
        if heights[n][d] >= 8
    ]
    _most, line_index, day_index = max(cells)
    top, day = series["series"][line_index], series["buckets"][day_index]
    point = page.evaluate(
        """([dataset, index]) => {
            const bar = Chart.getChart("daily-chart").getDatasetMeta(dataset).data[index];
            return { x: bar.x, y: (bar.y + bar.base) / 2 };
        }""",
        [line_index, day_index],
    )
    page.locator("#daily-chart").click(position=point)
    page.wait_for_selector("#requests:not([hidden])")
    assert page.locator("#requests-title").inner_text() == f"Requests on {day} for {top['model']}"

    params = {"account_id": account["id"], "date": day, "model": top["model"], "limit": "50"}
    first = dashboard.api.get("/api/analytics/requests", params=params).json()
    assert page.locator("#requests-count").inner_text() == f"{first['summary']['requests']:,}"
    assert page.locator("#requests-cost").get_attribute("data-exact") == first["summary"]["cost"]
    rows = page.locator("#requests tbody tr")
    assert [rows.nth(n).get_attribute("data-id") for n in range(rows.count())] == [r["id"] for r in first["data"]]

    assert first["next_cursor"] is not None, "the busiest day of a model has more than a page"
    page.get_by_role("button", name="Next page").click()
    second = dashboard.api.get("/api/analytics/requests", params=params | {"cursor": first["next_cursor"]}).json()
    page.wait_for_selector(f"#requests tbody tr[data-id='{second['data'][0]['id']}']")
    page.get_by_role("button", name="First page").click()
    page.wait_for_selector(f"#requests tbody tr[data-id='{first['data'][0]['id']}']")


def test_the_range_and_the_filters_narrow_every_figure(page: Page, dashboard: Dashboard) -> None:
    account = dashboard.account(NORTHWIND)
    _open_usage(page, dashboard, account_id=account["id"])
    first, last = dashboard.demo["from"][:10], dashboard.demo["to"][:10]  # the demo's month, across two months
    page.locator("#from").fill(first)
    page.locator("#to").fill(last)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(f"**from={first}**")
    page.wait_for_selector("body[data-ready=true]")
    whole = _series(dashboard, account_id=account["id"], to=last, **{"from": first})
    assert page.locator("#daily-chart").get_attribute("data-days") == str(len(whole["buckets"]))
    screenshot(page, "usage-desktop")

    provider = page.locator("#provider option").nth(1).get_attribute("value") or ""
    page.locator("#provider").select_option(provider)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(f"**provider={provider}**")
    page.wait_for_selector("body[data-ready=true]")
    narrowed = _series(dashboard, account_id=account["id"], provider=provider, to=last, **{"from": first})
    total = sum(Decimal(cost) for line in narrowed["series"] for cost in line["cost"])
    assert Decimal(page.locator("#range-total").get_attribute("data-exact") or "") == total
    everything = sum(Decimal(cost) for line in whole["series"] for cost in line["cost"])
    assert 0 < total < everything, "one provider's spend is a part of the whole"
    assert page.locator("#provider").input_value() == provider
    export = page.locator("#export").get_attribute("href") or ""
    assert export.startswith("/v1/usage/export?") and f"provider={provider}" in export and "format=csv" in export


def test_no_request_leaves_farebox_and_no_serious_accessibility_violation(
    browser: Browser, dashboard: Dashboard
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)  # axe is injected
    page = context.new_page()
    sign_in_as_operator(page, dashboard)
    page.wait_for_selector("body[data-ready]")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    failed: list[Request] = []
    page.on("requestfailed", lambda request: failed.append(request))
    page.goto(f"{dashboard.url}/dashboard/usage?account_id={dashboard.account(NORTHWIND)['id']}")
    page.wait_for_selector("body[data-ready=true]")
    assert asked and all(url.startswith(dashboard.url) for url in asked), [
        u for u in asked if not u.startswith(dashboard.url)
    ]
    assert not failed, [request.url for request in failed]
    assert serious_violations(page) == []
    screenshot(page, "usage-phone")
    context.close()
