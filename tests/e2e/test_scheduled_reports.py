"""`PUT /api/admin/analytics/scheduled-reports` and `GET` (seed 004) over HTTP on both backends: the seed's bodies set
and read back by the master key and an account's owner, bad bodies refused with 422 naming the field; a served
farebox delivering a due report once by e-mail (its file attached, to a real SMTP server) and to a webhook URL;
and `farebox reports schedule` and `farebox reports list`."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from admin_client import MASTER, Api, assert_error, open_api
from notify_server import serve

if TYPE_CHECKING:
    from tests.e2e.conftest import ServerThread

PATH = "/api/admin/analytics/scheduled-reports"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # a Sunday
DAILY = {
    "name": "Daily Operations Report",
    "schedule": "daily",
    "time": "09:00",
    "timezone": "UTC",
    "period": "24h",
    "recipients": ["ops@company.com"],
    "format": "pdf",
    "sections": ["summary", "alerts", "top_usage"],
}
WEEKLY = {
    "name": "Weekly Cost Analysis",
    "schedule": "weekly",
    "dayOfWeek": "monday",
    "time": "08:00",
    "period": "7d",
    "webhookUrl": "http://127.0.0.1:9/reports",
    "format": "excel",
    "sections": ["cost_breakdown", {"type": "trends", "granularity": "daily"}, "forecasts"],
}
SETTINGS = {"smtp_host": "127.0.0.1", "smtp_from": "farebox@example.test", "allow_private_webhook_urls": True}


@pytest.fixture
async def api(ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    secret = "e2e-scheduled-reports-server-secret-" + "s" * 16
    async with open_api(tmp_path, database_url=ledger_url, secret_key=secret, **SETTINGS) as opened:
        opened.clock.at = NOW
        yield opened


async def _put(api: Api, body: Any, account: str, token: str = MASTER) -> Any:
    headers = {"authorization": f"Bearer {token}"}
    return await api.client.put(PATH, json=body, params={"account_id": account}, headers=headers)


async def _endpoint(api: Api, account: str, url: str = "http://127.0.0.1:9/reports") -> None:
    """A webhook endpoint of the account at `url`: where a report's `webhookUrl` may send it."""
    body = {"account_id": account, "url": url, "events": ["usage.voided"]}
    await api.ok("POST", "/webhooks", body, status=201)


async def _get(api: Api, account: str | None, token: str = MASTER) -> Any:
    params = {} if account is None else {"account_id": account}
    return await api.client.get(PATH, params=params, headers={"authorization": f"Bearer {token}"})


@pytest.mark.anyio
async def test_the_seed_s_reports_are_set_and_read_back_by_the_master_key_and_an_owner(api: Api) -> None:
    acme = (await api.account("Acme", timezone="Asia/Kolkata"))["id"]
    await _endpoint(api, acme)
    put = await _put(api, {"reports": [WEEKLY, DAILY]}, acme)
    assert put.status_code == 200, put.text
    weekly, daily = put.json()["data"]["reports"]
    assert daily | {"id": "", "createdAt": "", "updatedAt": ""} == {
        "id": "",
        "accountId": acme,
        "name": "Daily Operations Report",
        "schedule": "daily",
        "time": "09:00",
        "timezone": "UTC",
        "period": "24h",
        "recipients": ["ops@company.com"],
        "webhookUrl": None,
        "format": "pdf",
        "sections": [
            {"type": kind, "groupBy": "provider", "granularity": "daily", "category": "virtual_keys"}
            | {"sortBy": "cost", "limit": 10}
            for kind in ("summary", "alerts", "top_items")
        ],
        "filters": {"excludeTestKeys": False},
        "nextRunAt": "2026-12-07T09:00:00Z",
        "createdAt": "",
        "updatedAt": "",
    }
    # No zone given: the account's (Monday 08:00 in Kolkata is 02:30 UTC).
    assert (weekly["timezone"], weekly["dayOfWeek"], weekly["nextRunAt"]) == (
        "Asia/Kolkata",
        "monday",
        "2026-12-07T02:30:00Z",
    )
    assert [section["type"] for section in weekly["sections"]] == ["breakdown", "trends", "forecasts"]
    assert (await _get(api, acme)).json() == {"success": True, "data": {"reports": [daily, weekly]}}

    owner = await api.member(acme, "olga@acme.test", "owner")
    token = await api.token(acme, owner["id"])
    api.clock.at = NOW + timedelta(hours=1)
    changed = await _put(api, {"reports": [WEEKLY | {"recipients": ["olga@acme.test"]}]}, acme, token)
    assert changed.status_code == 200, changed.text
    (kept,) = (await _get(api, None, token)).json()["data"]["reports"]
    assert (kept["id"], kept["nextRunAt"], kept["recipients"]) == (
        weekly["id"],
        weekly["nextRunAt"],
        ["olga@acme.test"],
    )
    assert kept["updatedAt"] == "2026-12-06T13:00:00Z"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"schedule": "hourly"}, "schedule", "daily"),
        ({"time": "9am"}, "time", "pattern"),
        ({"time": "24:00"}, "time", "pattern"),
        ({"timezone": "Mars/Olympus"}, "reports[0].timezone", "not an IANA time zone"),
        ({"recipients": ["ops-at-company.com"]}, "reports[0].recipients[0]", "not an e-mail address"),
        (
            {"webhookUrl": "https://hooks.test/unknown"},
            "reports[0].webhookUrl",
            "one of the account's webhook endpoints",
        ),
        ({"recipients": []}, "reports[0]", "give recipients, a webhookUrl or both"),
        ({"dayOfWeek": "monday"}, "reports[0].dayOfWeek", "only a weekly report"),
        ({"period": "36h"}, "reports[0].period", "whole days"),
        ({"sections": ["anomalies"]}, "sections", "summary"),
        ({"sections": [{"type": "summary", "metrics": ["vibes"]}]}, "reports[0].sections[0].metrics", "vibes"),
    ],
)
async def test_a_bad_report_is_a_422_naming_its_field(api: Api, change: dict[str, Any], field: str, words: str) -> None:
    acme = (await api.account("Acme"))["id"]
    error = assert_error(await _put(api, {"reports": [DAILY | change]}, acme), 422, "validation_failed")
    assert field in json.dumps(error["details"]) and words in error["message"], error


@pytest.mark.anyio
async def test_names_appear_once_the_master_key_names_the_account_and_e_mail_needs_smtp(
    api: Api, tmp_path: Path
) -> None:
    acme = (await api.account("Acme"))["id"]
    error = assert_error(await _put(api, {"reports": [DAILY, DAILY]}, acme), 422)
    assert "name appears once" in error["message"]
    assert "account_id" in assert_error(await _get(api, None), 422)["message"]
    async with open_api(tmp_path / "no-smtp") as bare:
        other = (await bare.account("Other"))["id"]
        assert "smtp_host" in assert_error(await _put(bare, {"reports": [DAILY]}, other), 422)["message"]


def test_a_served_farebox_delivers_a_due_report_once_by_e_mail_and_webhook(
    tmp_path: Path, port_factory: Callable[[], int], server_thread: type[ServerThread]
) -> None:
    offset = [timedelta(days=-1)]  # the schedule is set a day ago, so its next slot is now past

    def clock() -> datetime:
        return datetime.now(UTC) + offset[0]

    with serve(tmp_path, port_factory, server_thread, clock=clock, scheduled_reports_interval_seconds=0.1) as farebox:
        account = farebox.account(timezone="UTC")
        path = farebox.receiver.path()
        farebox.webhook(account, path, ["usage.voided"])
        report = {
            "name": "Ops",
            "schedule": "daily",
            "time": "00:00",
            "recipients": ["ops@acme.test"],
            "webhookUrl": farebox.receiver.url + path,
            "format": "csv",
            "sections": ["summary"],
        }
        put = farebox.admin("PUT", PATH, params={"account_id": account}, json={"reports": [report]})
        assert put.status_code == 200, put.text
        time.sleep(0.5)
        assert farebox.receiver.attempts(path) == [] and farebox.mailbox.messages == []

        offset[0] = timedelta(0)
        (posted,) = farebox.receiver.wait(path, 1)
        deadline = time.monotonic() + 10
        while not farebox.mailbox.messages:
            assert time.monotonic() < deadline, "no e-mail arrived"
            time.sleep(0.02)
        time.sleep(0.5)  # five more rounds of the runner: nothing more
        assert len(farebox.receiver.attempts(path)) == 1 and len(farebox.mailbox.messages) == 1

        today = datetime.now(UTC).date()
        yesterday = (today - timedelta(days=1)).isoformat()
        data = posted.body["data"]
        assert posted.body["type"] == "report.scheduled" and posted.msg_id.startswith("msg_")
        assert posted.verified, "signed with the endpoint's secret (Standard Webhooks)"
        assert data["report"]["period"] == {"startDate": yesterday, "endDate": yesterday, "timezone": "UTC"}
        assert data["slot"] == f"{today.isoformat()}T00:00:00Z"
        (mail,) = farebox.mailbox.messages
        assert mail["To"] == "ops@acme.test" and mail["Subject"] == f"[farebox] Ops: {yesterday} to {yesterday}"
        (attached,) = [part for part in mail.walk() if part.get_filename()]
        assert attached.get_filename() == f"ops-{yesterday}-{yesterday}.csv"
        rows = list(csv.reader(io.StringIO(attached.get_payload(decode=True).decode())))
        assert rows[0][0] == "section" and ["summary", "Summary", "", "total_cost", "0"] in rows
        (text,) = [part for part in mail.walk() if part.get_content_type() == "text/plain" and not part.get_filename()]
        assert "attachment" not in text.get_payload(decode=True).decode()  # the file is attached, not in the text
