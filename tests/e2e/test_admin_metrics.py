"""`GET /api/admin/analytics/performance-metrics` (seed 004) over HTTP: the analytics endpoints' answer times as this
process saw them, and the master key alone may read them."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from admin_client import MASTER, Api, assert_error

pytestmark = pytest.mark.anyio

PATH = "/api/admin/analytics/performance-metrics"
TRENDS = "/api/admin/analytics/usage/trends"


def _auth(token: str = MASTER) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_each_analytics_endpoint_s_answers_are_counted_and_timed(api: Api) -> None:
    account = await api.account("Acme")
    for _ in range(3):
        answered = await api.client.get(TRENDS, params={"account_id": account["id"]}, headers=_auth())
        assert answered.status_code == 200
    assert_error(await api.client.get(TRENDS, params={"period": "7x"}, headers=_auth()), 422)
    assert (await api.client.get("/api/admin/analytics/usage/live", headers=_auth())).status_code == 200
    assert (await api.client.get("/api/admin/accounts", headers=_auth())).status_code == 200

    response = await api.client.get(PATH, headers=_auth())
    assert response.status_code == 200, response.text
    data = json.loads(response.text, parse_float=Decimal)["data"]
    assert data["keptPerEndpoint"] == 1_000 and data["since"].endswith("Z")
    found = {(endpoint["method"], endpoint["path"]): endpoint for endpoint in data["endpoints"]}
    assert set(found) == {("GET", TRENDS), ("GET", "/api/admin/analytics/usage/live")}, "analytics routes only"
    trends = found[("GET", TRENDS)]
    assert (trends["requests"], trends["errors"]) == (4, 1), "the 422 counted as an error, its time not kept"
    assert 0 < trends["p50Ms"] <= trends["p95Ms"] <= trends["maxMs"]


async def test_only_the_master_key_reads_the_server_s_query_times(api: Api) -> None:
    account = await api.account("Acme")
    owner = await api.member(account["id"], "ada@acme.test", "owner")
    token = await api.token(account["id"], owner["id"])
    assert_error(await api.client.get(PATH, headers=_auth(token)), 403, "master_key_required")
    assert_error(await api.client.get(PATH), 401)
