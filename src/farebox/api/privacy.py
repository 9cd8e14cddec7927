"""A member's personal data (seed 004's privacy): exported as JSON, and erased by pseudonymising the member while
every amount of its usage stays.

`GET .../members/{member_id}/data` streams the member, its keys (never a secret), its API tokens (never a secret)
and every usage event attributed to it, voided ones left out, in time order; the member may ask for its own, as may
the account's owners, admins and billing members. `POST .../members/{member_id}/erase` pseudonymises it
(`Directory.erase_member`): for the master key and the account's owners and admins (an admin not an owner). farebox
never stores prompts or completions, so there are none to export or erase.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from farebox.api.admin import Caller, Dir, Tokens, guard_owner, member_of
from farebox.api.admin_schemas import KeyOut, MemberOut, TokenOut, present, present_all
from farebox.core.events import from_epoch_us
from farebox.core.money import format_usd
from farebox.core.owners import Member
from farebox.ledger.directory import Directory
from farebox.ledger.exports import EXPORT_COLUMNS, ExportRow
from farebox.ledger.member_tokens import MemberTokens
from farebox.ledger.reader import EventFilter, LedgerReader
from farebox.services import services

__all__ = ["member_data", "router"]

router = APIRouter(prefix="/api/admin", tags=["privacy"])

_COST, _TS = EXPORT_COLUMNS.index("cost_nano"), EXPORT_COLUMNS.index("ts_us")
_FLAGS = {EXPORT_COLUMNS.index("streamed"), EXPORT_COLUMNS.index("estimated")}


def _event(row: ExportRow) -> dict[str, Any]:
    """An event as the data export has it: its columns, the time as RFC 3339, the cost in exact USD."""
    shown = {
        name: bool(value) if n in _FLAGS else value
        for n, (name, value) in enumerate(zip(EXPORT_COLUMNS, row, strict=True))
    }
    del shown["ts_us"], shown["cost_nano"]
    return shown | {
        "timestamp": from_epoch_us(row[_TS]).isoformat().replace("+00:00", "Z"),
        "cost_usd": format_usd(row[_COST]),
    }


def _events(rows: list[ExportRow]) -> bytes:
    return b"".join(b"," + orjson.dumps(_event(row)) for row in rows)


async def member_data(
    member: Member, *, directory: Directory, tokens: MemberTokens, reader: LedgerReader, now: datetime
) -> AsyncIterator[bytes]:
    """The member's data as one JSON object, in chunks: `member`, `keys`, `tokens`, then `usage` (its events, a page
    at a time, so memory stays flat however many)."""
    shown_member = (await present_all(MemberOut, directory, [member]))[0]
    keys = [present(KeyOut, key, spent=0, now=now) for key in await directory.list_keys(member_id=member.id)]
    own_tokens = [TokenOut.of(token, now=now) for token in await tokens.list(member.id)]
    head = {
        "exported_at": now,
        "member": shown_member.model_dump(mode="json", exclude={"spend", "spend_cap", "percent_used"}),
        "keys": [
            key.model_dump(
                mode="json",
                include={"id", "name", "key_prefix", "status", "agent_id", "app", "tags", "created_at", "revoked_at"},
            )
            for key in keys
        ],
        "tokens": [token.model_dump(mode="json") for token in own_tokens],
    }
    yield orjson.dumps(head)[:-1] + b',"usage":['
    wanted = EventFilter(account_id=member.account_id, member_ids=(member.id,))
    first = True
    async for chunk in reader.export_pages(wanted, keep=_events):
        if chunk:
            yield chunk[1:] if first else chunk
            first = False
    yield b"]}"


@router.get(
    "/accounts/{account_id}/members/{member_id}/data",
    summary="A member's personal data: the member, its keys and tokens, and its usage, as JSON",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def export_member_data(
    request: Request, account_id: str, member_id: str, principal: Caller, directory: Dir, tokens: Tokens
) -> StreamingResponse:
    """Everything farebox holds about the member, streamed: the member (name, e-mail, role, dates), its virtual keys
    and API tokens (never a secret), and every usage event attributed to it, voided ones left out."""
    principal.require_read(account_id, member_id=member_id)
    member = await member_of(directory, account_id, member_id)
    chunks = member_data(
        member, directory=directory, tokens=tokens, reader=services(request).reader, now=directory.now()
    )
    return StreamingResponse(
        chunks,
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="member-{member_id}.json"'},
    )


@router.post(
    "/accounts/{account_id}/members/{member_id}/erase",
    summary="Erase a member: pseudonymise its name and e-mail address, revoke its credentials, keep every amount",
)
async def erase_member(account_id: str, member_id: str, principal: Caller, directory: Dir) -> MemberOut:
    """Its name becomes `Erased member` and its e-mail address `erased-<id>@erased.invalid`; its password, API tokens
    and sessions go; its keys are revoked and renamed `erased`; its requests' client addresses leave the audit log.
    Its id stays on its usage, so every total is unchanged. Erasing it again changes nothing."""
    principal.require_manage(account_id)
    guard_owner(principal, (await member_of(directory, account_id, member_id)).role)
    member = await directory.erase_member(member_id)
    return (await present_all(MemberOut, directory, [member]))[0]
