"""The audit trail over HTTP: every admin, analytics and usage route writes one row, with the caller's identity,
before its answer; `GET /api/admin/audit` reads them back, filtered and a page at a time; the retention deletes old
rows.

The routes and the world are `test_admin_access`'s: each route is called once by a credential it allows, the
narrowest (billing, then admin, owner, Mo, his key, the master key), with its own `X-Request-Id`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import test_admin_access
from admin_client import MASTER, Api, assert_error
from test_admin_access import CASES, World

from farebox.api.audit import AuditRetention

pytestmark = pytest.mark.anyio
template, world_api = test_admin_access.template, test_admin_access.world_api

NARROWEST = ("billing", "admin", "owner", "member", "key", "master")
IDENTITY = {
    "billing": ("member", "billing"),
    "admin": ("member", "admin"),
    "owner": ("member", "owner"),
    "member": ("member", "mo"),
    "key": ("key", "mo_key"),
    "master": ("master", None),
}


async def _audit(api: Api, token: str = MASTER, **params: str) -> Any:
    response = await api.client.get("/api/admin/audit", params=params, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def test_every_audited_route_writes_one_row_with_the_caller_s_identity(world_api: tuple[Api, World]) -> None:
    api, world = world_api
    for n, case in enumerate(CASES):
        credential = next(name for name in NARROWEST if name in case.allowed)
        correlation = f"case-{n}"
        headers = {"authorization": f"Bearer {world.secrets[credential]}", "x-request-id": correlation}
        body = None if case.body is None else case.body(world)
        response = await api.client.request(case.method, case.path.format(**world.ids), json=body, headers=headers)
        rows = (await _audit(api, correlation_id=correlation))["data"]
        if (case.method, case.path) == ("POST", "/api/events"):
            assert rows == [], "ingested usage is its own record"
            continue
        assert response.headers["x-request-id"] == correlation
        assert len(rows) == 1, (case, rows)
        (row,) = rows
        kind, holder = IDENTITY[credential]
        assert row["principal"]["kind"] == kind
        if kind == "member":
            assert row["principal"]["member_id"] == world.ids[holder]
            assert row["principal"]["role"] == (credential if credential != "member" else "member")
        elif kind == "key":
            assert row["principal"]["key_id"] == world.ids[holder]
        assert row["status"] == response.status_code, case
        assert row["method"] == case.method and row["operation"] == f"{case.method} {row['route']}"
        assert row["path"] == case.path.split("?")[0].format(**world.ids)
        assert row["client_address"] == "127.0.0.1"


async def test_a_row_names_what_it_concerns_and_the_filters_but_never_a_body_with_secrets(
    world_api: tuple[Api, World],
) -> None:
    api, world = world_api
    account = world.ids["account"]
    trends = await api.client.get(
        "/api/admin/analytics/usage/trends",
        params={"period": "7d", "granularity": "day", "account_id": account},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert trends.status_code == 200
    exported = await api.client.post(
        "/api/admin/analytics/export",
        params={"account_id": account},
        json={"period": "7d", "format": "json"},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert exported.status_code == 200
    password = "correct horse battery staple"
    changed = await api.call("PUT", f"/accounts/{account}/members/{world.ids['mo']}/password", {"password": password})
    assert changed.status_code in (200, 204), changed.text
    rows = (await _audit(api, limit="3"))["data"]
    put, export, read = rows
    assert read["route"] == "/api/admin/analytics/usage/trends" and read["account_id"] == account
    assert read["filters"] == {"period": "7d", "granularity": "day", "account_id": account}
    assert export["filters"]["body"] == {"period": "7d", "format": "json"}, "an export's body is its filters"
    assert put["route"] == "/api/admin/accounts/{account_id}/members/{member_id}/password"
    assert (put["account_id"], put["member_id"]) == (account, world.ids["mo"])
    assert put["filters"] == {} and password not in str(rows)
    assert read["correlation_id"].startswith("req_") and read["correlation_id"] != export["correlation_id"]


async def test_a_refused_credential_is_audited_without_an_identity(world_api: tuple[Api, World]) -> None:
    api, _world = world_api
    refused = await api.client.get(
        "/api/admin/accounts", headers={"authorization": "Bearer not-a-key", "x-request-id": "probe 1"}
    )
    assert refused.status_code == 401
    correlation = refused.headers["x-request-id"]
    assert correlation.startswith("req_"), "an id with a blank is not taken"
    (row,) = (await _audit(api, correlation_id=correlation))["data"]
    assert (row["principal"], row["status"], row["route"]) == (None, 401, "/api/admin/accounts")


async def test_an_owner_reads_its_own_account_s_rows_a_page_at_a_time(world_api: tuple[Api, World]) -> None:
    api, world = world_api
    owner = world.secrets["owner"]
    for _ in range(3):
        await api.client.get(
            f"/api/admin/accounts/{world.ids['account']}", headers={"authorization": f"Bearer {owner}"}
        )
    await api.client.get("/api/admin/accounts", headers={"authorization": f"Bearer {world.secrets['stranger']}"})
    first = await _audit(api, owner, limit="2")
    second = await _audit(api, owner, limit="2", cursor=first["next_cursor"])
    rows = first["data"] + second["data"]
    assert len(first["data"]) == 2 and first["next_cursor"] is not None
    assert {row["account_id"] for row in rows} == {world.ids["account"]}, "never the other account's"
    assert len({row["id"] for row in rows}) == len(rows)
    assert [row["timestamp"] for row in rows] == sorted((row["timestamp"] for row in rows), reverse=True)
    mine = await _audit(api, owner, principal_id=world.ids["owner"], operation="/api/admin/accounts/")
    assert len(mine["data"]) == 3
    stranger = await api.client.get(
        "/api/admin/audit",
        params={"account_id": world.ids["account"]},
        headers={"authorization": f"Bearer {world.secrets['stranger']}"},
    )
    assert_error(stranger, 404, "account_not_found")
    for bad in ({"cursor": "nonsense"}, {"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}):
        assert_error(
            await api.client.get("/api/admin/audit", params=bad, headers={"authorization": f"Bearer {MASTER}"}), 422
        )


async def test_the_retention_deletes_only_the_rows_older_than_it(world_api: tuple[Api, World]) -> None:
    api, _world = world_api
    start = datetime(2026, 3, 1, tzinfo=UTC)
    api.clock.at = start
    await api.client.get("/api/admin/accounts", headers={"authorization": f"Bearer {MASTER}"})
    api.clock.at = start + timedelta(days=20)
    await api.client.get("/api/admin/accounts", headers={"authorization": f"Bearer {MASTER}"})
    march = {"since": "2026-03-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"}
    assert [row["timestamp"] for row in (await _audit(api, **march))["data"]] == [
        "2026-03-21T00:00:00Z",
        "2026-03-01T00:00:00Z",
    ]
    retention = AuditRetention(api.services.audit, days=10, clock=lambda: start + timedelta(days=25))
    assert await retention.prune() >= 1
    assert (await _audit(api, until="2026-03-16T00:00:00Z"))["data"] == [], "nothing older than ten days is left"
    kept = [row["timestamp"] for row in (await _audit(api, **march))["data"]]
    assert kept == ["2026-03-21T00:00:00Z", "2026-03-21T00:00:00Z", "2026-03-21T00:00:00Z"], "the reads since"
