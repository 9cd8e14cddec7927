"""`farebox workloads set|list|delete`: an account's agents and plain VMs, named, from the terminal.

A workload's id is what its usage events carry in `agent_id`; `GET /api/usage` shows its usage under its name, and
a plain VM's compute apart from agents'. The records and JSON are the admin API's
(`/api/admin/accounts/{id}/workloads`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from farebox.api.workload_schemas import WorkloadOut
from farebox.cli.accounts import AccountId, Name
from farebox.cli.output import Json, command_group, show_one, show_table
from farebox.cli.runtime import console, print_json, with_directory
from farebox.ledger.directory import Directory
from farebox.ledger.workloads import WorkloadKind, Workloads

__all__ = ["workloads_app"]

workloads_app = command_group(help="Agents and plain VMs of an account, by the agent id their usage carries.")

WorkloadArg = Annotated[str, typer.Argument(help="Workload id: what its usage events carry in agent_id.")]
_COLUMNS = ("id", "kind", "name", "created_at", "updated_at")


@workloads_app.command("set")
def set_workload(
    workload_id: WorkloadArg,
    account: AccountId,
    name: Name,
    kind: Annotated[WorkloadKind, typer.Option("--kind", help="agent or plain_vm.")] = WorkloadKind.AGENT,
    as_json: Json = False,
) -> None:
    """Register an agent or plain VM, or rename it (and set its kind) if the account has it already."""

    async def run(directory: Directory) -> WorkloadOut:
        return WorkloadOut.of(await Workloads(directory).set(account, workload_id, name=name, kind=kind))

    show_one(with_directory(run), as_json=as_json)


@workloads_app.command("list")
def list_workloads(account: AccountId, as_json: Json = False) -> None:
    """The account's agents and plain VMs, by id."""

    async def run(directory: Directory) -> list[WorkloadOut]:
        return [WorkloadOut.of(found) for found in await Workloads(directory).list(account)]

    show_table(with_directory(run), _COLUMNS, as_json=as_json, title="Workloads")


@workloads_app.command("delete")
def delete_workload(workload_id: WorkloadArg, account: AccountId, as_json: Json = False) -> None:
    """Forget an agent or plain VM: its usage is shown again as an agent's, named by its id."""

    async def run(directory: Directory) -> WorkloadOut:
        return WorkloadOut.of(await Workloads(directory).delete(account, workload_id))

    removed = with_directory(run)
    if as_json:
        print_json({"removed": removed.model_dump(mode="json")})
    else:
        console.print(f"removed {removed.kind.value} {removed.id} ({removed.name})", highlight=False)
