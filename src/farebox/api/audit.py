"""The audit trail (seed 004): every read of analytics, exports and admin data and every change through the API is
written to the audit log before its answer leaves, and `GET /api/admin/audit` reads it back.

`AuditMiddleware` wraps the app (the proxy's own routes bypass it, as they bypass every middleware). A request to a
path under `/api/` or `/v1/usage` (but `POST /api/events`: ingested usage is its own record, in the ledger) is
audited: when the app starts its answer, one row is committed with the route, the status, who asked (the principal
`farebox.services.authenticate` accepted, none for a refused credential), the account, key and member concerned,
the filters (query parameters; and the body of the analytics endpoints whose bodies are filters), the client's
address and a correlation id (the caller's `X-Request-Id` or `X-Correlation-Id`, else a new one), which the answer
carries back as `X-Request-Id`. `AuditRetention` deletes rows past the retention, hourly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uuid_utils import uuid7

from farebox.api.client_address import client_address
from farebox.core.credentials import Principal
from farebox.core.events import epoch_us, from_epoch_us
from farebox.core.json_types import Time
from farebox.core.owners import Role
from farebox.errors import NotFound, PermissionDenied, ValidationFailed
from farebox.ledger.audit import AuditEntry, AuditLog, AuditQuery
from farebox.logs import REQUEST_ID
from farebox.services import authenticate, services

__all__ = ["AuditMiddleware", "AuditRetention", "router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/admin", tags=["audit"])

_AUDITED = ("/api/", "/v1/usage")
_NOT_AUDITED = {("POST", "/api/events")}
_FILTER_BODIES = re.compile(r"^/api/admin/(?:analytics/(?!webhooks)[a-z-]+|virtual-keys/compare)$")
"""POST routes whose JSON body says what is read (exports, reports, comparisons), kept with the row; never a body
that may hold a secret (webhook settings, keys, members, passwords)."""
_MAX_BODY = 16_384
"""The longest body kept: a longer one is noted as too long, not kept."""
_CORRELATION = re.compile(r"^[\x21-\x7e]{1,128}$")
_PRUNE_EVERY_S = 3_600.0
_PRUNE_BATCH = 5_000


class AuditMiddleware:
    """Writes an audited request's row when its answer starts, and adds `X-Request-Id` to the answer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        audit: AuditLog,
        clock: Callable[[], datetime],
        trust_proxy_headers: bool,
    ) -> None:
        self.app = app
        self._audit = audit
        self._clock = clock
        self._trust = trust_proxy_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get("x-request-id") or headers.get("x-correlation-id") or ""
        correlation = given if _CORRELATION.match(given) else f"req_{uuid.uuid4().hex}"
        REQUEST_ID.set(correlation)
        keep_body = scope["method"] == "POST" and _FILTER_BODIES.match(scope["path"]) is not None
        body = bytearray()
        written = False

        async def tee() -> Message:
            message = await receive()
            if keep_body and message["type"] == "http.request" and len(body) <= _MAX_BODY:
                body.extend(message.get("body", b""))
            return message

        async def start(message: Message) -> None:
            nonlocal written
            if message["type"] == "http.response.start" and not written:
                written = True
                MutableHeaders(scope=message).append("x-request-id", correlation)
                await self._record(scope, message["status"], correlation, bytes(body) if keep_body else None)
            await send(message)

        try:
            await self.app(scope, tee, start)
        except Exception:
            if not written:
                written = True
                await self._record(scope, 500, correlation, bytes(body) if keep_body else None)
            raise

    async def _record(self, scope: Scope, status: int, correlation: str, body: bytes | None) -> None:
        """Commit the row; a ledger that cannot take it is logged, and the answer still goes (it is computed)."""
        try:
            await self._audit.record(self._entry(scope, status, correlation, body))
        except Exception:
            log.exception("the audit log could not record %s %s", scope["method"], scope["path"])

    def _entry(self, scope: Scope, status: int, correlation: str, body: bytes | None) -> AuditEntry:
        principal = scope.get("state", {}).get("principal")
        assert principal is None or isinstance(principal, Principal)
        route = scope.get("route")
        params: dict[str, Any] = dict(scope.get("path_params") or {})
        query = QueryParams(scope.get("query_string", b""))
        filters: dict[str, Any] = {
            name: values[0] if len(values) == 1 else values
            for name in dict.fromkeys(query.keys())
            for values in [query.getlist(name)]
        }
        if body is not None:
            filters["body"] = _body(body)
        return AuditEntry(
            id=uuid7().hex,
            at_us=epoch_us(self._clock()),
            method=scope["method"],
            route=getattr(route, "path", "") or "",
            path=scope["path"][:2_000],
            status=status,
            principal_kind=None if principal is None else principal.kind.value,
            principal_account_id=None if principal is None else principal.account_id,
            principal_member_id=None if principal is None else principal.member_id,
            principal_key_id=None if principal is None else principal.key_id,
            principal_role=None if principal is None or principal.role is None else principal.role.value,
            account_id=_one(params, filters, "account_id", "accountId")
            or (None if principal is None else principal.account_id),
            key_id=_one(params, filters, "key_id", "key", "virtualKeyId"),
            member_id=_one(params, filters, "member_id", "member", "memberId"),
            filters=filters,
            client_address=client_address(Headers(scope=scope), scope.get("client"), trust_proxy=self._trust),
            correlation_id=correlation,
        )


def _audited(method: str, path: str) -> bool:
    return path.startswith(_AUDITED) and (method, path) not in _NOT_AUDITED


def _one(params: dict[str, Any], filters: dict[str, Any], *names: str) -> str | None:
    """The one id the path or the query names (a list of several names none)."""
    for name in names:
        value = params.get(name, filters.get(name))
        if isinstance(value, str) and value and "," not in value:
            return value[:36]
    return None


def _body(body: bytes) -> Any:
    if len(body) > _MAX_BODY:
        return {"omitted": f"longer than {_MAX_BODY} bytes"}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"omitted": "not JSON"}


class AuditRetention:
    """Deletes audit rows older than the retention, once an hour."""

    def __init__(self, audit: AuditLog, *, days: int, clock: Callable[[], datetime]) -> None:
        self._audit = audit
        self._retention = timedelta(days=days)
        self._clock = clock

    async def prune(self) -> int:
        """Delete every row past the retention; how many."""
        before_us = epoch_us(self._clock() - self._retention)
        deleted = 0
        while (batch := await self._audit.prune(before_us=before_us, limit=_PRUNE_BATCH)) > 0:
            deleted += batch
            if batch < _PRUNE_BATCH:
                break
        return deleted

    async def run(self) -> None:
        """Prune now and every hour until cancelled; a failed round is logged and tried at the next."""
        while True:
            try:
                await self.prune()
            except Exception:
                log.exception("pruning the audit log failed; trying again in an hour")
            with contextlib.suppress(TimeoutError):
                await asyncio.sleep(_PRUNE_EVERY_S)


def _reader(viewer: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """The master key, or an account's owner or admin (its own account's rows)."""
    if not viewer.is_master and viewer.role not in (Role.OWNER, Role.ADMIN):
        raise PermissionDenied(
            "the audit log is for the master key and an account's owners and admins", code="role_required"
        )
    return viewer


def _cursor(entry: AuditEntry) -> str:
    return base64.urlsafe_b64encode(f"{entry.at_us}.{entry.id}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_us, entry_id = text.split(".", 1)
        return int(at_us), entry_id
    except (ValueError, UnicodeDecodeError):
        raise _invalid("cursor", "not a cursor this API gave") from None


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"loc": field, "message": message}])


def _shown(entry: AuditEntry) -> dict[str, Any]:
    principal = None
    if entry.principal_kind is not None:
        principal = {
            "kind": entry.principal_kind,
            "account_id": entry.principal_account_id,
            "member_id": entry.principal_member_id,
            "key_id": entry.principal_key_id,
            "role": entry.principal_role,
        }
    return {
        "id": entry.id,
        "timestamp": from_epoch_us(entry.at_us).isoformat().replace("+00:00", "Z"),
        "operation": f"{entry.method} {entry.route or entry.path}",
        "method": entry.method,
        "route": entry.route or None,
        "path": entry.path,
        "status": entry.status,
        "principal": principal,
        "account_id": entry.account_id,
        "key_id": entry.key_id,
        "member_id": entry.member_id,
        "filters": entry.filters,
        "client_address": entry.client_address,
        "correlation_id": entry.correlation_id,
    }


@router.get(
    "/audit",
    summary="The audit log: who read or changed what, when and from where, newest first",
    responses={
        403: {"description": "A member that is not an owner or admin, or a virtual key (`role_required`)."},
        404: {"description": "`account_id` names an account the caller is not in (`account_not_found`)."},
        422: {"description": "A bad parameter: a `since` after `until`, a cursor this API did not give."},
    },
)
async def audit(
    request: Request,
    viewer: Annotated[Principal, Depends(_reader)],
    account_id: Annotated[str | None, Query(min_length=1, description="The account concerned.")] = None,
    principal_id: Annotated[
        str | None, Query(min_length=1, description="The member or virtual key that made the requests.")
    ] = None,
    principal_kind: Annotated[str | None, Query(pattern="^(master|member|key)$")] = None,
    operation: Annotated[
        str | None, Query(min_length=1, max_length=500, description="A route, or its start: `/api/admin/analytics`.")
    ] = None,
    correlation_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    since: Annotated[Time | None, Query(description="From this instant (included), with its offset.")] = None,
    until: Annotated[Time | None, Query(description="Before this instant, with its offset.")] = None,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> dict[str, Any]:
    """Audit rows newest first, `limit` at a time: the master key's of every account (or `account_id`'s), an owner's
    or admin's of its own account. `next_cursor` is null on the last page."""
    if not viewer.is_master:
        if account_id is not None and account_id != viewer.account_id:
            raise NotFound(f"no account with id {account_id!r}", code="account_not_found")
        account_id = viewer.account_id
    if since is not None and until is not None and until <= since:
        raise _invalid("until", "until comes before since")
    wanted = AuditQuery(
        account_id=account_id,
        principal_id=principal_id,
        principal_kind=principal_kind,
        route=operation,
        correlation_id=correlation_id,
        since_us=None if since is None else epoch_us(since),
        until_us=None if until is None else epoch_us(until),
        limit=limit + 1,
        after=_after(cursor),
    )
    rows = await services(request).audit.search(wanted)
    page, more = rows[:limit], len(rows) > limit
    return {"data": [_shown(entry) for entry in page], "next_cursor": _cursor(page[-1]) if more else None}
