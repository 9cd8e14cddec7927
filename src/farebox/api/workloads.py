"""Workloads under /api/admin: an account's agents and plain VMs, named by the id their usage carries in `agent_id`.

`PUT /api/admin/accounts/{account_id}/workloads/{workload_id}` registers a workload or renames it, and `DELETE`
forgets it: both for the account's managers (the master key, its owners and admins: `Principal.require_manage`).
`GET .../workloads` lists them for its readers (billing too: `Principal.require_read`). A member token is refused
(403), a virtual key too (403 `proxy_key`); another account's token is answered 404 `account_not_found`, as if the
account were not there. The ledger side: `farebox.ledger.workloads`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from farebox.api.admin_schemas import ListOf
from farebox.api.openapi import errors
from farebox.api.workload_schemas import WorkloadIn, WorkloadOut
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.owners import NAME_PATTERN
from farebox.errors import NotFound
from farebox.ledger.workloads import MAX_WORKLOAD_ID, Workloads
from farebox.services import authenticate, services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/accounts/{account_id}/workloads", tags=["workloads"])

Caller = Annotated[Principal, Depends(authenticate)]
WorkloadId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_WORKLOAD_ID,
        pattern=NAME_PATTERN,
        description="What the workload's usage events carry in `agent_id`.",
    ),
]


def _workloads(request: Request) -> Workloads:
    return services(request).workloads


def _same_account(principal: Principal, account_id: str) -> None:
    """Answer another account's member token as if the account did not exist (it may not learn that it does)."""
    if principal.kind is PrincipalKind.MEMBER and principal.account_id != account_id:
        raise NotFound(f"no account with id {account_id!r}", code="account_not_found")


@router.get("", summary="List an account's agents and plain VMs")
async def list_workloads(account_id: str, request: Request, principal: Caller) -> ListOf[WorkloadOut]:
    """The account's registered workloads, by id."""
    _same_account(principal, account_id)
    principal.require_read(account_id)
    return ListOf(data=[WorkloadOut.of(found) for found in await _workloads(request).list(account_id)])


@router.put(
    "/{workload_id:path}",
    summary="Register or rename an agent or plain VM",
    responses=errors({422: "A field is missing, unknown or bad (`error.details` names each)."}),
)
async def set_workload(
    account_id: str, workload_id: WorkloadId, body: WorkloadIn, request: Request, principal: Caller
) -> WorkloadOut:
    """Give the id a name and a kind; setting a registered id again renames it and sets its kind."""
    _same_account(principal, account_id)
    principal.require_manage(account_id)
    found = await _workloads(request).set(account_id, workload_id, name=body.name, kind=body.kind)
    return WorkloadOut.of(found)


@router.delete("/{workload_id:path}", status_code=204, summary="Forget an agent or plain VM")
async def delete_workload(account_id: str, workload_id: str, request: Request, principal: Caller) -> Response:
    """Forget the workload: its usage is shown again as an agent's, named by its id."""
    # Any id is looked up as given: one no `PUT` could have registered is simply not found (404), not a 422.
    _same_account(principal, account_id)
    principal.require_manage(account_id)
    await _workloads(request).delete(account_id, workload_id)
    return Response(status_code=204)
