"""Workloads (an account's agents and plain VMs) over the admin API and the CLI: register, rename, list, forget."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from admin_client import Api, assert_error

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli


@pytest.mark.anyio
async def test_a_workload_is_registered_renamed_listed_and_forgotten(api: Api) -> None:
    account = (await api.account("Acme"))["id"]
    path = f"/accounts/{account}/workloads"

    created = await api.ok("PUT", f"{path}/agent/support", {"name": " Support bot "})
    assert (created["id"], created["kind"], created["name"], created["account_id"]) == (
        "agent/support",
        "agent",
        "Support bot",
        account,
    )
    renamed = await api.ok("PUT", f"{path}/agent/support", {"name": "Helpdesk", "kind": "plain_vm"})
    assert (renamed["name"], renamed["kind"], renamed["created_at"]) == ("Helpdesk", "plain_vm", created["created_at"])
    await api.ok("PUT", f"{path}/a-1", {"name": "Other", "kind": "agent"})
    listed = await api.ok("GET", path)
    assert [(w["id"], w["name"]) for w in listed["data"]] == [("a-1", "Other"), ("agent/support", "Helpdesk")]

    assert (await api.call("DELETE", f"{path}/agent/support")).status_code == 204
    assert [w["id"] for w in (await api.ok("GET", path))["data"]] == ["a-1"]
    assert_error(await api.call("DELETE", f"{path}/agent/support"), 404, "workload_not_found")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "   "}, "name"),
        ({}, "name"),
        ({"name": "x", "kind": "robot"}, "kind"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
)
async def test_a_bad_body_is_refused_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    account = (await api.account("Acme"))["id"]
    error = assert_error(await api.call("PUT", f"/accounts/{account}/workloads/a-1", body), 422)
    assert error["details"][0]["loc"].endswith(field), error


@pytest.mark.anyio
async def test_an_unknown_account_or_a_too_long_id_is_refused(api: Api) -> None:
    assert_error(await api.call("PUT", "/accounts/nope/workloads/a-1", {"name": "x"}), 404, "account_not_found")
    assert_error(await api.call("GET", "/accounts/nope/workloads"), 404, "account_not_found")
    account = (await api.account("Acme"))["id"]
    too_long = "a" * 129
    assert_error(await api.call("PUT", f"/accounts/{account}/workloads/{too_long}", {"name": "x"}), 422)
    await api.ok("PUT", f"/accounts/{account}/workloads/{'a' * 128}", {"name": "x"})


def test_the_cli_sets_lists_and_deletes_workloads(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]

    made = cli.json("workloads", "set", "vm-1", "--account", account, "--name", "Build box", "--kind", "plain_vm")
    assert (made["id"], made["kind"], made["name"]) == ("vm-1", "plain_vm", "Build box")
    cli.json("workloads", "set", "agent-a", "--account", account, "--name", "Support bot")
    assert (
        cli.json("workloads", "set", "vm-1", "--account", account, "--name", "Builder", "--kind", "plain_vm")["name"]
        == "Builder"
    )
    listed = cli.json("workloads", "list", "--account", account)
    assert [(w["id"], w["kind"], w["name"]) for w in listed] == [
        ("agent-a", "agent", "Support bot"),
        ("vm-1", "plain_vm", "Builder"),
    ]
    assert "Support bot" in cli.run("workloads", "list", "--account", account).stdout

    removed = cli.json("workloads", "delete", "vm-1", "--account", account)
    assert removed["removed"]["id"] == "vm-1"
    assert cli.json_error("workloads", "delete", "vm-1", "--account", account)["code"] == "workload_not_found"
    assert cli.json_error("workloads", "list", "--account", "nope")["code"] == "account_not_found"
    assert cli.json_error("workloads", "set", "x", "--account", account, "--name", " ")["code"] == "validation_failed"
