"""Admin REST API under /api/admin: accounts, members and virtual keys.

Callers authenticate with the master key (every account) or with a virtual key of an owner or admin
member (its own account only; anything else is 403). Only the master key creates accounts, and an
admin (not an owner) may neither create, promote to, change nor remove an owner.

Money is exact both ways. Responses carry amounts as decimal USD strings (`"50.00"`). Requests may
send an amount as a string (`"50.00"`), an integer, or a JSON number: this router reads request JSON
with `parse_float=Decimal`, so `50.25` arrives as the exact decimal `50.25`, never through a float.
Amounts are in USD with at most 9 decimal places.

The secret of a key appears in exactly two responses, once each: creating the key (`key`) and rotating
it (`key`, the new secret). No other response, listing or log line contains a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema, field_validator
from starlette.responses import Response

from farebox.api.auth import Principal, require_admin
from farebox.core.directory import Account, KeyStatus, Member, Plan, Role, VirtualKey, invalid, percent_used
from farebox.core.money import MoneyError, format_usd, parse_usd
from farebox.core.periods import Period
from farebox.errors import NotFound, PermissionDenied
from farebox.ledger.directory import MAX_GRACE_SECONDS, Directory

__all__ = [
    "AccountIn",
    "AccountOut",
    "AccountPatch",
    "KeyCreated",
    "KeyIn",
    "KeyOut",
    "KeyPatch",
    "ListOf",
    "MemberIn",
    "MemberOut",
    "MemberPatch",
    "RotateIn",
    "Out",
    "present",
    "present_all",
    "router",
]

_MAX_DAYS = 36_500
T = TypeVar("T", bound=BaseModel)


class DecimalJSONRequest(Request):
    """A request whose JSON numbers with a fraction are read as `Decimal`, never as float."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=Decimal)
        return self._json


class DecimalJSONRoute(APIRoute):
    """Routes that hand their endpoints a `DecimalJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_json_handler(request: Request) -> Response:
            return await handler(DecimalJSONRequest(request.scope, request.receive))

        return exact_json_handler


router = APIRouter(prefix="/api/admin", tags=["admin"], route_class=DecimalJSONRoute)


def _usd(value: object) -> int:
    if isinstance(value, float):
        raise ValueError('send amounts as decimal strings such as "12.50"')
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError('must be a USD amount such as "12.50"')
    try:
        nano = parse_usd(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None
    if nano < 0:
        raise ValueError("must not be negative")
    return nano


Usd = Annotated[
    int,
    BeforeValidator(_usd),
    WithJsonSchema({"type": "string", "description": "USD amount, at most 9 decimal places", "examples": ["50.00"]}),
]
"""A USD amount in a request (string, integer or exact JSON number), validated into nano-USD."""
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _partial: ClassVar[bool] = False

    def changes(self) -> dict[str, Any]:
        """The fields given (every field of a new record), with `spend_cap` renamed `spend_cap_nano`."""
        given = self.model_dump(exclude_unset=self._partial)
        if "spend_cap" in given:
            given["spend_cap_nano"] = given.pop("spend_cap")
        return given


class _Patch(_Body):
    """A partial update: a field left out stays as it is; null clears a field that may be empty."""

    _partial = True
    _required: ClassVar[tuple[str, ...]] = ()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls._required:
            raise ValueError("may not be null")
        return value


class AccountIn(_Body):
    name: Name
    plan: Plan = Plan.FREE
    timezone: str = "UTC"
    spend_cap: Usd | None = None
    cap_period: Period = Period.MONTHLY


class AccountPatch(_Patch):
    _required = ("name", "plan", "timezone", "cap_period")
    name: Name | None = None
    plan: Plan | None = None
    timezone: str | None = None
    spend_cap: Usd | None = None
    cap_period: Period | None = None


class MemberIn(_Body):
    email: str = Field(min_length=3, max_length=320)
    name: Name
    role: Role = Role.MEMBER
    spend_cap: Usd | None = None
    cap_period: Period = Period.MONTHLY


class MemberPatch(_Patch):
    _required = ("email", "name", "role", "cap_period")
    email: str | None = Field(None, min_length=3, max_length=320)
    name: Name | None = None
    role: Role | None = None
    spend_cap: Usd | None = None
    cap_period: Period | None = None


class _KeyFields(BaseModel):
    allowed_models: list[Name] | None = Field(None, description="Models the key may call; null for every model.")
    agent_id: str | None = Field(None, max_length=200)
    app: str | None = Field(None, max_length=200)
    spend_cap: Usd | None = None
    expires_at: datetime | None = Field(None, description="ISO-8601; without an offset it is taken as UTC.")
    expires_in_days: int | None = Field(None, ge=1, le=_MAX_DAYS, description="Instead of expires_at.")


class KeyIn(_KeyFields, _Body):
    account_id: str
    member_id: str | None = Field(
        None, description="Who usage is attributed to; defaults to the calling member (none for the master key)."
    )
    name: Name
    tags: list[Name] = []
    cap_period: Period = Period.MONTHLY


class KeyPatch(_KeyFields, _Patch):
    _required = ("name", "tags", "cap_period", "expires_in_days")
    name: Name | None = None
    tags: list[Name] | None = None
    cap_period: Period | None = None


class RotateIn(_Body):
    grace_period_seconds: int = Field(0, ge=0, le=MAX_GRACE_SECONDS, description="How long the old secret still works.")


SpendCap = Annotated[str | None, Field(description="Cap per cap period, decimal USD; null for no cap.")]
Spend = Annotated[str, Field(description="Spent in the current cap period (account's timezone), decimal USD.")]
PercentUsed = Annotated[str | None, Field(description="spend / spend_cap in percent, two places; null for no cap.")]


class AccountOut(BaseModel):
    id: str
    name: str
    plan: Plan
    timezone: str
    spend_cap: SpendCap
    spend: Spend
    cap_period: Period
    percent_used: PercentUsed
    created_at: datetime
    updated_at: datetime


class MemberOut(BaseModel):
    id: str
    account_id: str
    email: str
    name: str
    role: Role
    spend_cap: SpendCap
    spend: Spend
    cap_period: Period
    percent_used: PercentUsed
    created_at: datetime
    updated_at: datetime


class KeyOut(BaseModel):
    id: str
    name: str
    account_id: str
    member_id: str | None = Field(description="The member usage is attributed to; null for an account-level key.")
    key_prefix: str = Field(description="The start of the secret, for recognising it; never the secret.")
    status: KeyStatus
    allowed_models: list[str] | None = Field(description="Models the key may call; null for every model.")
    agent_id: str | None
    app: str | None
    tags: list[str]
    spend_cap: SpendCap
    spend: Spend
    cap_period: Period
    percent_used: PercentUsed
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime


class KeyCreated(KeyOut):
    key: str = Field(description="The secret. Shown in this response only: store it now.")


class ListOf(BaseModel, Generic[T]):
    data: list[T]


Out = TypeVar("Out", AccountOut, MemberOut, KeyOut)


def present(cls: type[Out], owner: Account | Member | VirtualKey, *, spent: int, now: datetime) -> Out:
    """The JSON model of an account, member or key (never a secret), with its spend in its cap period."""
    values: dict[str, Any] = {field.name: getattr(owner, field.name) for field in fields(owner)}
    percent = percent_used(spent, owner.spend_cap_nano)
    values["spend_cap"] = None if owner.spend_cap_nano is None else format_usd(owner.spend_cap_nano)
    values["spend"] = format_usd(spent)
    values["percent_used"] = None if percent is None else str(percent)
    if isinstance(owner, VirtualKey):
        values["key_prefix"] = owner.display_prefix
        values["status"] = owner.status(now)
    return cls.model_validate(values)


def _directory(request: Request) -> Directory:
    directory: Directory = request.app.state.directory
    return directory


Admin = Annotated[Principal, Depends(require_admin)]
Dir = Annotated[Directory, Depends(_directory)]


async def present_all(
    cls: type[Out], directory: Directory, owners: Sequence[Account | Member | VirtualKey]
) -> list[Out]:
    """`present` many accounts, members or keys, reading their spend in one go."""
    now = directory.now()
    return [present(cls, o, spent=s, now=now) for o, s in zip(owners, await directory.spends(owners), strict=True)]


def _expiry(body: _KeyFields, directory: Directory) -> dict[str, Any]:
    given = body.model_fields_set
    if "expires_at" in given and "expires_in_days" in given:
        raise invalid("expires_in_days", "give expires_at or expires_in_days, not both")
    if body.expires_in_days is not None:
        return {"expires_at": directory.now() + timedelta(days=body.expires_in_days)}
    return {"expires_at": body.expires_at} if "expires_at" in given else {}


def _guard_owner(principal: Principal, *roles: Role | None) -> None:
    """Refuse an admin (not owner) member creating, promoting to, changing or removing an owner."""
    if principal.role == Role.ADMIN and Role.OWNER in roles:
        raise PermissionDenied("only an owner or the master key may manage owners", code="owner_required")


async def _member_of(directory: Directory, account_id: str, member_id: str) -> Member:
    member = await directory.get_member(member_id)
    if member.account_id != account_id:
        raise NotFound(f"no member with id {member_id!r} in account {account_id!r}", code="member_not_found")
    return member


async def _key_for(directory: Directory, principal: Principal, key_id: str, *, manage: bool = False) -> VirtualKey:
    """The key, if the caller may see it; with `manage`, only if the caller may also change it."""
    key = await directory.get_key(key_id)
    principal.require_account(key.account_id)
    if manage:
        await _guard_key_holder(directory, principal, key.member_id)
    return key


async def _guard_key_holder(directory: Directory, principal: Principal, member_id: str | None) -> None:
    """An admin may not create, rotate, change or revoke an owner's keys: a key's secret is its holder's power."""
    if member_id is not None and principal.role == Role.ADMIN:
        _guard_owner(principal, (await directory.get_member(member_id)).role)


# Accounts


@router.get("/accounts", summary="List accounts")
async def list_accounts(principal: Admin, directory: Dir) -> ListOf[AccountOut]:
    """Every account for the master key; a member's own account otherwise."""
    if principal.account_id is None:
        accounts = await directory.list_accounts()
    else:
        accounts = [await directory.get_account(principal.account_id)]
    return ListOf(data=await present_all(AccountOut, directory, accounts))


@router.post("/accounts", status_code=201, summary="Create an account")
async def create_account(body: AccountIn, principal: Admin, directory: Dir) -> AccountOut:
    """Create an account (master key only)."""
    if not principal.is_master:
        raise PermissionDenied("only the master key may create accounts", code="master_key_required")
    account = await directory.create_account(**body.changes())
    return present(AccountOut, account, spent=0, now=directory.now())


@router.get("/accounts/{account_id}", summary="Show an account")
async def get_account(account_id: str, principal: Admin, directory: Dir) -> AccountOut:
    principal.require_account(account_id)
    return (await present_all(AccountOut, directory, [await directory.get_account(account_id)]))[0]


@router.patch("/accounts/{account_id}", summary="Update an account")
async def update_account(account_id: str, body: AccountPatch, principal: Admin, directory: Dir) -> AccountOut:
    principal.require_account(account_id)
    account = await directory.update_account(account_id, **body.changes())
    return (await present_all(AccountOut, directory, [account]))[0]


# Members


@router.get("/accounts/{account_id}/members", summary="List an account's members")
async def list_members(account_id: str, principal: Admin, directory: Dir) -> ListOf[MemberOut]:
    principal.require_account(account_id)
    return ListOf(data=await present_all(MemberOut, directory, await directory.list_members(account_id)))


@router.post("/accounts/{account_id}/members", status_code=201, summary="Add a member")
async def create_member(account_id: str, body: MemberIn, principal: Admin, directory: Dir) -> MemberOut:
    principal.require_account(account_id)
    _guard_owner(principal, body.role)
    member = await directory.create_member(account_id, **body.changes())
    return present(MemberOut, member, spent=0, now=directory.now())


@router.get("/accounts/{account_id}/members/{member_id}", summary="Show a member")
async def get_member(account_id: str, member_id: str, principal: Admin, directory: Dir) -> MemberOut:
    principal.require_account(account_id)
    return (await present_all(MemberOut, directory, [await _member_of(directory, account_id, member_id)]))[0]


@router.patch("/accounts/{account_id}/members/{member_id}", summary="Update a member")
async def update_member(
    account_id: str, member_id: str, body: MemberPatch, principal: Admin, directory: Dir
) -> MemberOut:
    principal.require_account(account_id)
    _guard_owner(principal, (await _member_of(directory, account_id, member_id)).role, body.role)
    member = await directory.update_member(member_id, **body.changes())
    return (await present_all(MemberOut, directory, [member]))[0]


@router.delete("/accounts/{account_id}/members/{member_id}", status_code=204, summary="Remove a member")
async def remove_member(account_id: str, member_id: str, principal: Admin, directory: Dir) -> Response:
    """Remove a member; its keys are revoked (and kept, detached from it)."""
    principal.require_account(account_id)
    _guard_owner(principal, (await _member_of(directory, account_id, member_id)).role)
    await directory.remove_member(member_id)
    return Response(status_code=204)


# Virtual keys


@router.get("/virtual-keys", summary="List virtual keys")
async def list_keys(
    principal: Admin, directory: Dir, account_id: str | None = None, member_id: str | None = None
) -> ListOf[KeyOut]:
    """Keys, optionally of one account and/or member; a member sees its own account's keys only."""
    if account_id is not None:
        principal.require_account(account_id)
    keys = await directory.list_keys(account_id=account_id or principal.account_id, member_id=member_id)
    return ListOf(data=await present_all(KeyOut, directory, keys))


@router.post("/virtual-keys", status_code=201, summary="Create a virtual key")
async def create_key(body: KeyIn, principal: Admin, directory: Dir) -> KeyCreated:
    """Create a key. The response holds the secret as `key`, once: it is never shown again."""
    principal.require_account(body.account_id)
    fields = body.changes()
    del fields["account_id"], fields["member_id"]
    fields.pop("expires_in_days", None)
    member_id = body.member_id if "member_id" in body.model_fields_set else principal.member_id
    await _guard_key_holder(directory, principal, member_id)
    key, secret = await directory.create_key(
        body.account_id, member_id=member_id, **(fields | _expiry(body, directory))
    )
    return KeyCreated(**present(KeyOut, key, spent=0, now=directory.now()).model_dump(), key=secret)


@router.get("/virtual-keys/{key_id}", summary="Show a virtual key")
async def get_key(key_id: str, principal: Admin, directory: Dir) -> KeyOut:
    return (await present_all(KeyOut, directory, [await _key_for(directory, principal, key_id)]))[0]


@router.patch("/virtual-keys/{key_id}", summary="Update a virtual key")
async def update_key(key_id: str, body: KeyPatch, principal: Admin, directory: Dir) -> KeyOut:
    """Change the given fields; null clears allowed_models (every model), agent_id, app, spend_cap, expires_at."""
    await _key_for(directory, principal, key_id, manage=True)
    changes = body.changes()
    changes.pop("expires_in_days", None)
    key = await directory.update_key(key_id, **(changes | _expiry(body, directory)))
    return (await present_all(KeyOut, directory, [key]))[0]


@router.post("/virtual-keys/{key_id}/rotate", summary="Rotate a virtual key's secret")
async def rotate_key(key_id: str, principal: Admin, directory: Dir, body: RotateIn | None = None) -> KeyCreated:
    """A new secret, returned once as `key`; the old one keeps working for `grace_period_seconds` (default 0)."""
    await _key_for(directory, principal, key_id, manage=True)
    grace = body.grace_period_seconds if body is not None else 0
    key, secret = await directory.rotate_key(key_id, grace_seconds=grace)
    return KeyCreated(**(await present_all(KeyOut, directory, [key]))[0].model_dump(), key=secret)


@router.post("/virtual-keys/{key_id}/revoke", summary="Revoke a virtual key")
@router.delete("/virtual-keys/{key_id}", summary="Revoke a virtual key (same as POST .../revoke)")
async def revoke_key(key_id: str, principal: Admin, directory: Dir) -> KeyOut:
    """Revoke the key for good: every secret of it stops working at once. The key is kept for its history."""
    await _key_for(directory, principal, key_id, manage=True)
    return (await present_all(KeyOut, directory, [await directory.revoke_key(key_id)]))[0]
