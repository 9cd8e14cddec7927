"""`POST /api/admin/events/{event_id}/void`: void a wrongly ingested usage event, as an audited adjustment.

Allowed to whoever may ingest for the event's account: the master key, or an owner or admin member token of
that account (another account's event answers 404, as if it did not exist; a billing or member token 403
`not_admin`, a virtual key 403 `proxy_key`). The body is `{"reason": "..."}` (1 to 1,000 characters,
required). The event row is never changed or deleted: the ledger appends a void that nets the event out of
its rollup, its spend counters (this process's caps at once) and budget status, and tells the account's
`usage.voided` webhooks (`farebox.ledger.adjustments`).

201: the void (`farebox.api.void_schemas.VoidOut`). 404 `event_not_found`; 409 `event_not_ingested` for a
proxied request (it reached its provider, which bills it), 409 `event_already_voided` for a second void; 422
for a missing or empty reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from farebox.api.void_schemas import VoidIn, VoidOut, present_void
from farebox.core.credentials import Principal
from farebox.services import actor_of, authenticate, services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.post(
    "/events/{event_id}/void",
    status_code=201,
    summary="Void a wrongly ingested usage event",
    responses={
        404: {"description": "No such event (or another account's)."},
        409: {"description": "A proxied request, not an ingested event; or voided already."},
    },
)
async def void_event(
    event_id: str, body: VoidIn, request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> VoidOut:
    """Append a void of the event, netting it out of every spend figure; the event itself stays as recorded."""
    if principal.account_id is not None:  # not the master key: an owner or admin of its account, as for ingesting
        principal.require_manage(principal.account_id)
    void = await services(request).adjustments.void(
        event_id, reason=body.reason, by=actor_of(principal), account_id=principal.account_id
    )
    return present_void(void)
