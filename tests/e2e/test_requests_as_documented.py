"""The admin API takes what `/openapi.json` says it takes, and answers what it says it answers.

Each test is one thing schemathesis found (`test_openapi_conformance.py`) that a client would have hit:
a wrong `Allow` on 405, a number read as a time, `"10"` read as an integer, a repeated parameter read as its
last value, answers of 500 to a bad URL or a far-off expiry, a decimal answered in scientific notation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from admin_client import MASTER, Api, assert_error, open_api

pytestmark = pytest.mark.anyio


async def test_the_document_names_credentials_and_errors(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == schemes["bearer"] | {"type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == schemes["apiKey"] | {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert "HTTPValidationError" not in orjson.dumps(document).decode()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            errors = {status for status in responses if int(status) >= 400}
            if path == "/healthz":
                assert operation.get("security") is None and not errors
                continue
            if path == "/readyz":
                assert operation.get("security") is None and errors == {"503"}
                continue
            assert operation["security"] == [{"bearer": []}, {"apiKey": []}], (method, path)
            assert {"401", "403", "503"} <= errors, (method, path)
            names_an_account = any(p["name"] in ("account_id", "accountId") for p in operation.get("parameters", []))
            named = (
                "{" in path
                or names_an_account
                or path.endswith(("virtual-keys", "webhooks", "budgets/status", "compare"))
            )
            assert ("404" in errors) is named, (method, path)
            for status in errors:
                error = responses[status]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def _allowed(response: Any) -> set[str]:
    assert response.status_code == 405, response.text
    return {method.strip() for method in response.headers["allow"].split(",")}


async def test_405_names_every_method_the_path_serves(api: Api) -> None:
    account = await api.account()
    key = await api.key(account["id"])
    auth = {"authorization": f"Bearer {MASTER}"}

    assert _allowed(await api.client.put(f"/api/admin/virtual-keys/{key['id']}", headers=auth)) == {
        "GET",
        "PATCH",
        "DELETE",
    }
    assert _allowed(await api.client.options("/api/admin/accounts", headers=auth)) == {"GET", "POST"}
    assert _allowed(await api.client.delete(f"/api/admin/accounts/{account['id']}/alerts")) == {"GET", "PUT"}
    assert _allowed(await api.client.get("/v1/chat/completions")) == {"POST"}


async def test_a_time_is_an_rfc_3339_string_never_a_number(api: Api) -> None:
    account = await api.account()
    history = f"/accounts/{account['id']}/alerts/history"

    error = assert_error(await api.call("GET", f"{history}?since=0.5"), 422, "validation_failed")
    assert error["details"][0]["loc"] == "query.since"
    assert_error(await api.call("GET", f"{history}?since=1700000000"), 422, "validation_failed")
    assert (await api.call("GET", f"{history}?since=2026-01-31T12:00:00Z")).status_code == 200
    body = {"account_id": account["id"], "name": "k", "expires_at": 4102444800}
    assert assert_error(await api.call("POST", "/virtual-keys", body), 422)["details"][0]["loc"] == "expires_at"


async def test_integers_and_booleans_are_json_ones(api: Api) -> None:
    account = await api.account()
    key = {"account_id": account["id"], "name": "k"}

    for wrong in ("10", True):
        error = assert_error(await api.call("POST", "/virtual-keys", key | {"expires_in_days": wrong}), 422)
        assert error["details"][0]["loc"] == "expires_in_days"
    created = await api.ok("POST", "/virtual-keys", key | {"expires_in_days": 10.0}, status=201)
    assert created["expires_at"] is not None
    rules = await api.ok("GET", f"/accounts/{account['id']}/alerts")
    rules["anomalies"]["enabled"] = 0
    error = assert_error(await api.call("PUT", f"/accounts/{account['id']}/alerts", rules), 422)
    assert error["details"][0]["loc"] == "anomalies.enabled"


async def test_a_query_parameter_given_twice_is_refused(api: Api) -> None:
    account = await api.account()
    await api.key(account["id"])

    error = assert_error(await api.call("GET", "/virtual-keys?account_id=a&account_id=b"), 422, "validation_failed")
    assert error["details"] == [{"loc": "account_id", "message": "given more than once; give one value"}]
    ignored = await api.call("GET", f"/virtual-keys?account_id={account['id']}&page=1&page=2")
    assert ignored.status_code == 200 and len(ignored.json()["data"]) == 1


async def test_a_malformed_webhook_url_is_422_not_500(api: Api) -> None:
    account = await api.account()
    for url in ("http://[::1/hook", "http://example.com]/hook", "https://hooks example.com/x"):
        body = {"account_id": account["id"], "url": url, "events": ["usage.threshold"]}
        assert assert_error(await api.call("POST", "/webhooks", body), 422)["details"][0]["loc"] == "url"


async def test_an_expiry_past_year_9999_in_utc_is_the_end_of_time(api: Api) -> None:
    account = await api.account()
    member = await api.member(account["id"], "lea@acme.test")
    key = {"account_id": account["id"], "name": "k"}

    created = await api.ok("POST", "/virtual-keys", key | {"expires_at": "9999-12-31T23:59:59-23:59"}, status=201)
    assert created["expires_at"].startswith("9999-12-31T23:59:59") and created["status"] == "active"
    changed = await api.ok("PATCH", f"/virtual-keys/{created['id']}", {"expires_at": "9999-12-31T23:59:59.9999999Z"})
    assert changed["expires_at"].startswith("9999-12-31T23:59:59")
    token = {"name": "t", "expires_at": "9999-12-31T23:59:59-23:59"}
    await api.ok("POST", f"/accounts/{account['id']}/members/{member['id']}/tokens", token, status=201)
    error = assert_error(
        await api.call("POST", "/virtual-keys", key | {"expires_at": "0001-01-01T00:00:00+23:59"}), 422
    )
    assert error["details"] == [{"loc": "expires_at", "message": "is in the past"}]


async def test_alert_amounts_are_answered_in_plain_notation(api: Api) -> None:
    account = await api.account()
    path = f"/accounts/{account['id']}/alerts"
    rules = await api.ok("GET", path)
    body = (
        orjson.dumps(rules)
        .replace(b'"spike_min":"1"', b'"spike_min":1e-9')
        .replace(b'"leak_min":"5"', b'"leak_min":5e2')
    )

    saved = await api.call("PUT", path, raw=body)

    assert saved.status_code == 200, saved.text
    assert (saved.json()["anomalies"]["spike_min"], saved.json()["anomalies"]["leak_min"]) == ("0.000000001", "500")
    assert (await api.ok("GET", path))["anomalies"]["spike_min"] == "0.000000001"


async def test_budget_status_is_of_the_caller_s_account_or_of_every_account(api: Api) -> None:
    account = await api.account()
    other = await api.account("Globex")
    owner = await api.member(account["id"], "olga@acme.test", role="owner")
    token = await api.token(account["id"], owner["id"])

    own = (await api.ok("GET", "/budgets/status", token=token))["data"]
    assert [row["id"] for row in own["accounts"]] == [account["id"]]
    named = (await api.ok("GET", f"/budgets/status?account_id={account['id']}", token=token))["data"]
    assert named == own
    every = (await api.ok("GET", "/budgets/status"))["data"]
    assert [row["id"] for row in every["accounts"]] == [account["id"], other["id"]]
    assert every["globalBudget"]["accounts"] == 2
    error = assert_error(await api.call("GET", "/budgets/status?account_id=", token=MASTER), 422, "validation_failed")
    assert error["details"][0]["loc"] == "query.account_id"


async def test_the_master_key_lists_every_accounts_webhooks(tmp_path: Path) -> None:
    async with open_api(tmp_path, allow_private_webhook_urls=True) as api:
        ids = []
        for name in ("Acme", "Globex"):
            account = await api.account(name)
            body = {"account_id": account["id"], "url": "http://127.0.0.1:9/hook", "events": ["usage.threshold"]}
            ids.append((await api.ok("POST", "/webhooks", body, status=201))["id"])

        listed = await api.ok("GET", "/webhooks")

        assert sorted(endpoint["id"] for endpoint in listed["data"]) == sorted(ids)


async def test_usd_amounts_in_strings_are_plain_decimals(api: Api) -> None:
    for amount in ("1e2", " 5", "+5", ".5", "5.0000000001"):
        error = assert_error(await api.call("POST", "/accounts", {"name": "A", "spend_cap": amount}), 422)
        assert error["details"][0]["loc"] == "spend_cap"
    assert (await api.account(spend_cap="5.5"))["spend_cap"] == "5.50"
