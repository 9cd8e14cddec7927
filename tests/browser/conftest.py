"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real `farebox serve` holding
a `farebox demo` month.

`FAREBOX_CHROMIUM` names the browser (default `/usr/bin/chromium`; `.ci/run` installs it with apt-get and sets
it). Without a browser the tests are skipped, and fail where `CI` or `FAREBOX_CHROMIUM` is set. Screenshots go
to `FAREBOX_SCREENSHOTS` when it is set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from dashboard_browser import CHROMIUM, MASTER, Dashboard  # tests/browser/dashboard_browser.py
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from served_process import free_port, wait_healthy  # tests/served_process.py

DEMO_EVENTS = 60_000


def _environment(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")} | extra


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    directory = tmp_path_factory.mktemp("dashboard")
    env = _environment(
        FAREBOX_DATABASE_URL=f"sqlite:///{directory / 'ledger.db'}",
        FAREBOX_MASTER_KEY=MASTER,
        FAREBOX_ALLOW_PRIVATE_WEBHOOK_URLS="true",  # the alerts test's endpoint listens on loopback (or nowhere)
        FAREBOX_WEBHOOK_MAX_ATTEMPTS="1",  # so that a delivery fails at once, for the page's Retry
    )
    today = datetime.now(UTC).date().isoformat()
    made = subprocess.run(
        [sys.executable, "-m", "farebox", "demo", "--events", str(DEMO_EVENTS), "--end", today, "--json"],
        cwd=directory,
        env=env,
        capture_output=True,
        check=True,
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "farebox", "serve", "--port", str(port)],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {MASTER}"}) as api:
            yield Dashboard(url, orjson.loads(made.stdout), api)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, for one test module at a time: while it runs, its event loop is the thread's running
    loop, so it must stop before the suite's asyncio tests run."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") or os.environ.get("FAREBOX_CHROMIUM"):  # .ci/run names the browser it installed
            pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set FAREBOX_CHROMIUM)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM)
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
