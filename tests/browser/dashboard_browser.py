"""What the dashboard's browser tests share: the running farebox they drive, signing in, screenshots."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

__all__ = [
    "CHROMIUM",
    "MASTER",
    "Dashboard",
    "screenshot",
    "serious_violations",
    "sign_in_as_member",
    "sign_in_as_operator",
]

MASTER = "fbx_master_browser_" + "b" * 24
CHROMIUM = os.environ.get("FAREBOX_CHROMIUM", "/usr/bin/chromium")


@dataclass
class Dashboard:
    """A running farebox with a demo month: its address, the operator's key, and what `farebox demo` made."""

    url: str
    demo: dict[str, Any]
    api: httpx.Client
    """The JSON API as the operator (the master key), to hold the pages' figures to."""

    def account(self, name: str) -> dict[str, Any]:
        return next(account for account in self.demo["accounts"] if account["name"] == name)


def sign_in_as_operator(page: Page, dashboard: Dashboard) -> None:
    """Sign in with the master key on the sign-in page, as the operator does."""
    page.goto(f"{dashboard.url}/dashboard/sign-in")
    page.get_by_label("Master key").fill(MASTER)
    page.get_by_role("button", name="Sign in with the master key").click()
    page.wait_for_url("**/dashboard/usage**")


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot as `name.png` under `FAREBOX_SCREENSHOTS`, when it is set."""
    folder = os.environ.get("FAREBOX_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


PASSWORD = "browser tests' password"


def sign_in_as_member(page: Page, dashboard: Dashboard, member: dict[str, Any]) -> None:
    """Give the member a password over the admin API, then sign in with it on the sign-in page."""
    path = f"/api/admin/accounts/{member['account_id']}/members/{member['id']}/password"
    dashboard.api.put(path, json={"password": PASSWORD}).raise_for_status()
    page.goto(f"{dashboard.url}/dashboard/sign-in")
    page.get_by_label("E-mail address").fill(member["email"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/dashboard/usage**")


AXE = Path(__file__).parent / "vendor" / "axe.min.js"


def serious_violations(page: Page) -> list[tuple[str, str, list[Any]]]:
    """What axe-core (vendored from npm) finds of serious or critical impact on the page as it stands: (rule,
    impact, the first few elements). The page's context must bypass its CSP, which would refuse the injection."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
