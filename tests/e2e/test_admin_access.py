"""Every admin route × every credential: who may do what (`farebox.services.authenticate`), as a table.

One world is built over the API with the master key: an account with an owner, an admin, a billing member
and two plain members (Mo and Mia), the first four with a personal token; Mo's virtual key with one request
in the ledger, Mia's key, a webhook endpoint; and a second account whose owner holds a token too. Each case
starts from a copy of that world's ledger file, and one credential calls one route. A route the table does
not list fails the coverage test, so a new route cannot ship without deciding who may call it.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from admin_client import MASTER, Api, assert_error, open_api

pytestmark = pytest.mark.anyio

CREDENTIALS = ("master", "owner", "admin", "billing", "member", "key", "stranger", "none")
"""`member` is Mo, `key` Mo's virtual key, `stranger` the owner of another account."""

READ = frozenset({"master", "owner", "admin", "billing"})
MANAGE = frozenset({"master", "owner", "admin"})
OWN_READ = READ | {"member"}
"""Routes about Mo's own records: Mo may read them."""
OWN_MANAGE = MANAGE | {"member"}
OWN_USAGE = OWN_READ | {"key"}
LISTS = frozenset({"stranger"})
"""Listings answer a stranger with its own account's records (200), never this account's."""


@dataclass
class World:
    ids: dict[str, str]
    secrets: dict[str, str]


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    """A template over `World.ids`, e.g. `/virtual-keys/{mo_key}`."""
    allowed: frozenset[str]
    ok: int = 200
    body: Callable[[World], Any] | None = None
    stranger: int = 404
    """What the other account's owner gets: 404 (the record is hidden, as an unknown id's), 200 (its own listing)
    or 422 (an unknown id in a body)."""
    refusal: str | None = None
    """The error code of every 403, when one code says it for all."""
    manages: bool | None = None
    """Whether a member short of the route's need is told `not_admin` (else `not_yours`); default: not a GET."""


def _webhook(world: World) -> dict[str, Any]:
    return {"account_id": world.ids["account"], "url": "http://127.0.0.1:9/hook", "events": ["usage.threshold"]}


def _event(world: World) -> dict[str, Any]:
    event = {"id": "evt-new", "key_id": world.ids["mo_key"], "axis": "llm", "provider": "openai", "model": "gpt-4o"}
    return {"events": [event | {"input_tokens": 10, "output_tokens": 1}]}


SETTINGS = {"allow_private_webhook_urls": True}
"""The world's webhook endpoint is on loopback (nothing is delivered: no lifespan runs)."""
MEMBER = "/api/admin/accounts/{account}/members"
WORKLOAD = "/api/admin/accounts/{account}/workloads/{workload}"
CASES = [
    Case("GET", "/api/admin/accounts", READ, stranger=200),
    Case(
        "POST",
        "/api/admin/accounts",
        frozenset({"master"}),
        201,
        lambda w: {"name": "New"},
        stranger=403,
        refusal="master_key_required",
    ),
    Case("GET", "/api/admin/accounts/{account}", READ),
    Case("PATCH", "/api/admin/accounts/{account}", MANAGE, body=lambda w: {"spend_cap": "999999"}),
    Case("GET", "/api/admin/accounts/{account}/credits", READ),
    Case("POST", "/api/admin/accounts/{account}/credits", MANAGE, 201, lambda w: {"amount_usd": "10.00"}),
    Case("GET", MEMBER, READ),
    Case("POST", MEMBER, MANAGE, 201, lambda w: {"email": "new@acme.test", "name": "New"}),
    Case("GET", MEMBER + "/{mo}", OWN_READ),
    Case("PATCH", MEMBER + "/{mo}", MANAGE, body=lambda w: {"spend_cap": "999999"}),
    Case("DELETE", MEMBER + "/{mia}", MANAGE, 204),
    Case("GET", MEMBER + "/{mo}/tokens", OWN_MANAGE, manages=True),
    Case("POST", MEMBER + "/{mo}/tokens", OWN_MANAGE, 201, lambda w: {"name": "ci"}),
    Case("DELETE", MEMBER + "/{mo}/tokens/{mo_token}", OWN_MANAGE),
    Case("PUT", MEMBER + "/{mo}/password", OWN_MANAGE, 204, lambda w: {"password": "a long new password"}),
    Case("DELETE", MEMBER + "/{mo}/password", OWN_MANAGE, 204),
    Case("GET", "/api/admin/virtual-keys", OWN_READ, stranger=200),
    Case("POST", "/api/admin/virtual-keys", MANAGE, 201, lambda w: {"account_id": w.ids["account"], "name": "x"}),
    Case("GET", "/api/admin/virtual-keys/{mo_key}", OWN_READ),
    Case("GET", "/api/admin/virtual-keys/{mia_key}", READ),
    Case("PATCH", "/api/admin/virtual-keys/{mo_key}", MANAGE, body=lambda w: {"spend_cap": "999999"}),
    Case("DELETE", "/api/admin/virtual-keys/{mo_key}", OWN_MANAGE),
    Case("DELETE", "/api/admin/virtual-keys/{mia_key}", MANAGE),
    Case("POST", "/api/admin/virtual-keys/{mo_key}/rotate", OWN_MANAGE),
    Case("POST", "/api/admin/virtual-keys/{mo_key}/revoke", OWN_MANAGE),
    Case("POST", "/api/admin/virtual-keys/{mo_key}/disable", MANAGE),
    Case("POST", "/api/admin/virtual-keys/{mo_key}/enable", MANAGE),
    Case("GET", "/api/admin/virtual-keys/{mo_key}/budget", OWN_USAGE),
    Case("GET", "/api/admin/virtual-keys/{mia_key}/budget", READ),
    Case("GET", "/api/admin/budgets/status?account_id={account}", READ, refusal="role_required"),
    Case("GET", "/api/admin/budgets/alerts?account_id={account}", READ, refusal="role_required"),
    Case("PUT", "/api/admin/budgets/alerts?account_id={account}", MANAGE, body=lambda w: {}, refusal="role_required"),
    Case("GET", "/api/admin/requests/{mo_event}", OWN_USAGE, stranger=404),
    Case("GET", "/api/admin/accounts/{account}/alerts", READ),
    Case("PUT", "/api/admin/accounts/{account}/alerts", MANAGE, body=lambda w: {}),
    Case("GET", "/api/admin/accounts/{account}/alerts/history", READ),
    Case("GET", "/api/admin/webhooks?account_id={account}", READ),
    Case("POST", "/api/admin/webhooks", MANAGE, 201, _webhook),
    Case("GET", "/api/admin/webhooks/{webhook}", READ),
    Case("PATCH", "/api/admin/webhooks/{webhook}", MANAGE, body=lambda w: {"description": "x"}),
    Case("DELETE", "/api/admin/webhooks/{webhook}", MANAGE, 204),
    Case("POST", "/api/admin/webhooks/{webhook}/rotate-secret", MANAGE),
    Case("GET", "/api/admin/webhooks/{webhook}/deliveries", READ),
    Case("POST", "/api/admin/webhooks/{webhook}/deliveries/{message}/retry", MANAGE, 404),
    Case("POST", "/api/admin/webhooks/{webhook}/test", MANAGE, 202),
    Case("POST", "/api/events", MANAGE, 200, _event, stranger=422),
    Case("POST", "/api/admin/events/{mo_ingested}/void", MANAGE, 201, lambda w: {"reason": "twice"}, stranger=404),
    Case("GET", "/api/analytics/models?account_id={account}", OWN_USAGE, stranger=404),
    Case("GET", "/api/analytics/models/over-time?account_id={account}", OWN_USAGE, stranger=404),
    Case("GET", "/api/analytics/keys/{mo_key}", OWN_USAGE, stranger=404),
    Case("GET", "/api/analytics/keys/{mia_key}", READ, stranger=404),
    Case("GET", "/api/analytics/requests?date=2026-12-05&account_id={account}", OWN_USAGE, stranger=404),
    Case("GET", "/api/analytics/filters?account_id={account}", OWN_USAGE, stranger=404),
    Case("GET", "/api/analytics/members?account_id={account}", MANAGE, stranger=404, refusal="role_required"),
    Case("GET", "/api/admin/analytics/usage/trends?account_id={account}", READ, refusal="role_required"),
    Case("GET", "/api/admin/providers/analytics?account_id={account}", READ, refusal="role_required"),
    Case("GET", "/api/admin/virtual-keys/{mo_key}/analytics", READ, refusal="role_required"),
    Case(
        "POST",
        "/api/admin/virtual-keys/compare",
        READ,
        body=lambda w: {"keyIds": [w.ids["mo_key"], w.ids["mia_key"]]},
        refusal="role_required",
    ),
    Case("GET", "/api/admin/analytics/patterns?account_id={account}", READ, refusal="role_required"),
    Case("GET", "/api/admin/analytics/budget-forecast?account_id={account}", READ, refusal="role_required"),
    Case("GET", "/api/admin/analytics/usage/live?account_id={account}", READ, refusal="role_required"),
    Case("GET", "/api/admin/analytics/cost-optimization?account_id={account}", READ, refusal="role_required"),
    Case("GET", "/api/admin/analytics/performance?account_id={account}", READ, refusal="role_required"),
    Case(
        "GET",
        "/api/admin/analytics/performance-metrics",
        frozenset({"master"}),
        stranger=403,
        refusal="master_key_required",
    ),
    Case(
        "POST",
        "/api/admin/analytics/export?account_id={account}",
        READ,
        body=lambda w: {"period": "7d"},
        refusal="role_required",
    ),
    Case(
        "POST",
        "/api/admin/analytics/billing-export?account_id={account}",
        READ,
        body=lambda w: {"billingCycle": "2026-11"},
        refusal="role_required",
    ),
    Case("GET", "/v1/usage?account_id={account}", OWN_USAGE, stranger=404),
    Case("GET", "/v1/usage/models?account_id={account}", OWN_USAGE, stranger=404),
    Case("GET", "/v1/usage/export?account_id={account}", OWN_USAGE, stranger=404),
    Case("GET", "/api/analytics/members/{mo}?account_id={account}", MANAGE, stranger=404, refusal="role_required"),
    Case("GET", "/api/usage?accountId={account}", OWN_USAGE, stranger=404),
    Case("GET", "/api/usage?admin=1", frozenset({"master"}), stranger=403, refusal="master_key_required"),
    Case("GET", "/api/admin/accounts/{account}/workloads", READ, stranger=404),
    Case("PUT", WORKLOAD, MANAGE, body=lambda w: {"name": "Build box", "kind": "plain_vm"}, stranger=404),
    Case("DELETE", WORKLOAD, MANAGE, 204, stranger=404),
    Case("GET", "/api/admin/audit", MANAGE, stranger=200, refusal="role_required"),
    *(
        Case("GET", f"/api/admin/analytics/{path}", frozenset({"master"}), stranger=403, refusal="master_key_required")
        for path in ("ingestion-status", "pipeline-health")
    ),
    Case(
        "POST",
        "/api/admin/analytics/reports?account_id={account}",
        READ,
        body=lambda w: {"period": "7d", "sections": [{"type": "summary"}]},
        refusal="role_required",
    ),
    Case(
        "POST",
        "/api/admin/analytics/recalculate-costs?account_id={account}",
        MANAGE,
        body=lambda w: {"startDate": "2026-11-01", "endDate": "2026-11-30", "dryRun": True},
        refusal="role_required",
    ),
    Case("GET", "/api/admin/analytics/webhooks?account_id={account}", READ),
    Case(
        "PUT",
        "/api/admin/analytics/webhooks?account_id={account}",
        MANAGE,
        body=lambda w: {"endpoints": [{"url": "http://127.0.0.1:9/analytics", "events": ["usage.recorded"]}]},
    ),
    Case("GET", f"{MEMBER}/{{mo}}/data", OWN_READ),
    Case("GET", "/api/admin/analytics/scheduled-reports?account_id={account}", READ),
    Case(
        "PUT",
        "/api/admin/analytics/scheduled-reports?account_id={account}",
        MANAGE,
        body=lambda w: {
            "reports": [
                {"name": "Daily", "schedule": "daily", "time": "09:00", "webhookUrl": "http://127.0.0.1:9/hook"}
            ]
        },
    ),
    # Last: `test_audit` calls every case in one world, and an erased Mo has no token left.
    Case("POST", f"{MEMBER}/{{mo}}/erase", MANAGE),
]


async def _world(api: Api) -> World:
    ids: dict[str, str] = {"message": "no-such-message"}
    secrets: dict[str, str] = {"master": MASTER}
    ids["account"] = (await api.ok("POST", "/accounts", {"name": "Acme", "plan": "enterprise"}, status=201))["id"]
    members = f"/accounts/{ids['account']}/members"
    for name, role in [("owner", "owner"), ("admin", "admin"), ("billing", "billing"), ("mo", "member")]:
        body = {"email": f"{name}@acme.test", "name": name, "role": role}
        ids[name] = (await api.ok("POST", members, body, status=201))["id"]
        created = await api.ok("POST", f"{members}/{ids[name]}/tokens", {"name": "laptop"}, status=201)
        secrets["member" if name == "mo" else name] = created["token"]
        ids[f"{name}_token"] = created["id"]
    ids["mia"] = (await api.ok("POST", members, {"email": "mia@acme.test", "name": "Mia"}, status=201))["id"]
    for name, member in [("mo_key", "mo"), ("mia_key", "mia")]:
        key = await api.key(ids["account"], member_id=ids[member])
        ids[name] = key["id"]
        secrets.setdefault("key", key["key"])
    event = {"id": "evt-mo", "key_id": ids["mo_key"], "axis": "llm", "provider": "openai", "model": "gpt-4o"}
    posted = await api.client.post(
        "/api/events", json={"events": [event]}, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert posted.status_code == 200, posted.text
    ids["mo_event"] = ids["mo_ingested"] = "evt-mo"  # a request's usage event, and an ingested one
    ids["webhook"] = (await api.ok("POST", "/webhooks", _webhook(World(ids, secrets)), status=201))["id"]
    ids["workload"] = "vm-1"
    await api.ok("PUT", f"/accounts/{ids['account']}/workloads/vm-1", {"name": "VM", "kind": "plain_vm"})
    other = (await api.ok("POST", "/accounts", {"name": "Globex"}, status=201))["id"]
    boss_fields = {"email": "b@globex.test", "name": "B", "role": "owner"}
    boss = await api.ok("POST", f"/accounts/{other}/members", boss_fields, status=201)
    stranger = await api.ok("POST", f"/accounts/{other}/members/{boss['id']}/tokens", {"name": "x"}, status=201)
    secrets["stranger"] = stranger["token"]
    return World(ids, secrets)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    """The world's ledger file, built once, and its ids and secrets."""
    directory = tmp_path_factory.mktemp("world")

    async def build() -> World:
        async with open_api(directory, **SETTINGS) as api:
            return await _world(api)

    return directory / "l.db", anyio.run(build)


@pytest.fixture
async def world_api(
    template: tuple[Path, World], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Api, World]]:
    """The admin API on a fresh copy of the world."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(template[0], tmp_path / "l.db")
    async with open_api(tmp_path, **SETTINGS) as api:
        yield api, template[1]


def _expected(case: Case, credential: str) -> tuple[int, str | None]:
    """(status, error code) the credential should get."""
    if credential == "none":
        return 401, "missing_api_key"
    if credential in case.allowed:
        return case.ok, None
    if credential == "stranger":
        return case.stranger, case.refusal if case.stranger == 403 else None
    if case.refusal is not None:
        return 403, case.refusal
    if credential == "key":
        return 403, "proxy_key"
    manages = case.method != "GET" if case.manages is None else case.manages
    return 403, "not_admin" if manages else "not_yours"


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.method} {case.path}")
async def test_who_may_call_each_admin_route(world_api: tuple[Api, World], case: Case, credential: str) -> None:
    api, world = world_api
    path = case.path.format(**world.ids)
    headers = {} if credential == "none" else {"authorization": f"Bearer {world.secrets[credential]}"}
    body = None if case.body is None else case.body(world)
    response = await api.client.request(case.method, path, json=body, headers=headers)
    status, code = _expected(case, credential)
    if status >= 400:
        assert_error(response, status, code)
    else:
        assert response.status_code == status, response.text


async def test_the_table_covers_every_admin_route(world_api: tuple[Api, World]) -> None:
    api, _world = world_api
    schema = (await api.client.get("/openapi.json")).json()
    served = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        if path.startswith(("/api/admin", "/api/events", "/api/analytics", "/api/usage", "/v1/usage"))
        for method in item
    }
    names = {"account": "account_id", "mo": "member_id", "mia": "member_id", "mo_token": "token_id"}
    names |= {"mo_key": "key_id", "mia_key": "key_id", "mo_event": "request_id", "webhook": "endpoint_id"}
    names |= {"message": "message_id", "mo_ingested": "event_id", "workload": "workload_id"}
    covered = {
        (case.method, case.path.split("?")[0].format(**{k: "{" + v + "}" for k, v in names.items()})) for case in CASES
    }
    assert served == covered
