"""Admin REST API under /api/admin: accounts, members (with their API tokens and passwords) and virtual keys.

Callers authenticate with the master key (every account) or a member token (its member's role, in its
own account; see `farebox.services.authenticate`); a virtual key is refused (403 `proxy_key`) except for its own
usage. Only the master key creates accounts, and an admin (not an owner) may neither create, promote
to, change nor remove an owner, nor create, rotate, change or revoke an owner's keys, nor manage an
owner's tokens or password. Bodies and money formats: `farebox.api.admin_schemas`.

The secret of a key appears in exactly two responses, once each: creating the key (`key`) and rotating
it (`key`, the new secret). No other response, listing or log line contains a secret, and none a
member's password or its hash (a member shows only `has_password`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from farebox.api.admin_schemas import (
    AccountIn,
    AccountOut,
    AccountPatch,
    DisableIn,
    KeyCreated,
    KeyFields,
    KeyIn,
    KeyOut,
    KeyPatch,
    ListOf,
    MemberIn,
    MemberOut,
    MemberPatch,
    PasswordIn,
    RotateIn,
    TokenCreated,
    TokenIn,
    TokenOut,
    present,
    present_all,
)
from farebox.api.exact_json import DecimalJSONRoute
from farebox.api.openapi import errors
from farebox.core.credentials import Principal
from farebox.core.owners import Member, Role, VirtualKey, invalid
from farebox.errors import NotFound, PermissionDenied
from farebox.ledger.directory import Directory, member_erased
from farebox.ledger.member_passwords import MemberPasswords
from farebox.ledger.member_tokens import MemberTokens
from farebox.services import authenticate, services

__all__ = ["Caller", "Dir", "Tokens", "guard_owner", "member_of", "router"]

router = APIRouter(prefix="/api/admin", tags=["admin"], route_class=DecimalJSONRoute)


def _directory(request: Request) -> Directory:
    directory = services(request).directory
    return directory


def _tokens(request: Request) -> MemberTokens:
    tokens = services(request).tokens
    return tokens


def _passwords(request: Request) -> MemberPasswords:
    passwords = services(request).passwords
    return passwords


Caller = Annotated[Principal, Depends(authenticate)]
_EMAIL_TAKEN = errors({409: "The account already has a member with this e-mail address (`email_taken`)."})
Dir = Annotated[Directory, Depends(_directory)]
Tokens = Annotated[MemberTokens, Depends(_tokens)]
Passwords = Annotated[MemberPasswords, Depends(_passwords)]


def _expiry(body: KeyFields | TokenIn, directory: Directory) -> dict[str, Any]:
    given = body.model_fields_set
    if "expires_at" in given and "expires_in_days" in given:
        raise invalid("expires_in_days", "give expires_at or expires_in_days, not both")
    if body.expires_in_days is not None:
        return {"expires_at": directory.now() + timedelta(days=body.expires_in_days)}
    return {"expires_at": body.expires_at} if "expires_at" in given else {}


def guard_owner(principal: Principal, *roles: Role | None) -> None:
    """Refuse an admin (not owner) member creating, promoting to, changing or removing an owner."""
    if principal.role == Role.ADMIN and Role.OWNER in roles:
        raise PermissionDenied("only an owner or the master key may manage owners", code="owner_required")


async def member_of(directory: Directory, account_id: str, member_id: str) -> Member:
    member = await directory.get_member(member_id)
    if member.account_id != account_id:
        raise NotFound(f"no member with id {member_id!r} in account {account_id!r}", code="member_not_found")
    return member


async def _key_for(directory: Directory, principal: Principal, key_id: str) -> VirtualKey:
    """The key, if the caller may see it."""
    key = await directory.get_key(key_id)
    principal.require_read(key.account_id, member_id=key.member_id, missing=NotFound.of("virtual key", key_id))
    return key


async def _managed_key(
    directory: Directory, principal: Principal, key_id: str, *, by_holder: bool = False
) -> VirtualKey:
    """The key, if the caller may change it; with `by_holder`, also if it is the caller's own key."""
    key = await directory.get_key(key_id)
    missing = NotFound.of("virtual key", key_id)
    principal.require_manage(key.account_id, holder=key.member_id if by_holder else None, missing=missing)
    await _guard_key_holder(directory, principal, key.member_id)
    return key


async def _guard_key_holder(directory: Directory, principal: Principal, member_id: str | None) -> None:
    """An admin may not create, rotate, change or revoke an owner's keys: a key's secret is its holder's power."""
    if member_id is not None and principal.role == Role.ADMIN:
        guard_owner(principal, (await directory.get_member(member_id)).role)


# Accounts


@router.get("/accounts", summary="List accounts")
async def list_accounts(principal: Caller, directory: Dir) -> ListOf[AccountOut]:
    """Every account for the master key; a member's own account otherwise."""
    if principal.account_id is None:
        accounts = await directory.list_accounts()
    else:
        principal.require_read(principal.account_id)
        accounts = [await directory.get_account(principal.account_id)]
    return ListOf(data=await present_all(AccountOut, directory, accounts))


@router.post("/accounts", status_code=201, summary="Create an account")
async def create_account(body: AccountIn, principal: Caller, directory: Dir) -> AccountOut:
    """Create an account (master key only)."""
    if not principal.is_master:
        raise PermissionDenied("only the master key may create accounts", code="master_key_required")
    account = await directory.create_account(**body.changes())
    return present(AccountOut, account, spent=0, now=directory.now())


@router.get("/accounts/{account_id}", summary="Show an account")
async def get_account(account_id: str, principal: Caller, directory: Dir) -> AccountOut:
    principal.require_read(account_id)
    return (await present_all(AccountOut, directory, [await directory.get_account(account_id)]))[0]


@router.patch("/accounts/{account_id}", summary="Update an account")
async def update_account(account_id: str, body: AccountPatch, principal: Caller, directory: Dir) -> AccountOut:
    principal.require_manage(account_id)
    account = await directory.update_account(account_id, **body.changes())
    return (await present_all(AccountOut, directory, [account]))[0]


# Members


@router.get("/accounts/{account_id}/members", summary="List an account's members")
async def list_members(account_id: str, principal: Caller, directory: Dir) -> ListOf[MemberOut]:
    principal.require_read(account_id)
    return ListOf(data=await present_all(MemberOut, directory, await directory.list_members(account_id)))


@router.post("/accounts/{account_id}/members", status_code=201, summary="Add a member", responses=_EMAIL_TAKEN)
async def create_member(account_id: str, body: MemberIn, principal: Caller, directory: Dir) -> MemberOut:
    principal.require_manage(account_id)
    guard_owner(principal, body.role)
    member = await directory.create_member(account_id, **body.changes())
    return present(MemberOut, member, spent=0, now=directory.now())


@router.get("/accounts/{account_id}/members/{member_id}", summary="Show a member")
async def get_member(account_id: str, member_id: str, principal: Caller, directory: Dir) -> MemberOut:
    principal.require_read(account_id, member_id=member_id)
    return (await present_all(MemberOut, directory, [await member_of(directory, account_id, member_id)]))[0]


@router.patch("/accounts/{account_id}/members/{member_id}", summary="Update a member", responses=_EMAIL_TAKEN)
async def update_member(
    account_id: str, member_id: str, body: MemberPatch, principal: Caller, directory: Dir
) -> MemberOut:
    principal.require_manage(account_id)
    guard_owner(principal, (await member_of(directory, account_id, member_id)).role, body.role)
    member = await directory.update_member(member_id, **body.changes())
    return (await present_all(MemberOut, directory, [member]))[0]


@router.delete("/accounts/{account_id}/members/{member_id}", status_code=204, summary="Remove a member")
async def remove_member(account_id: str, member_id: str, principal: Caller, directory: Dir) -> Response:
    """Remove a member; its keys are revoked (and kept, detached from it) and its API tokens deleted."""
    principal.require_manage(account_id)
    guard_owner(principal, (await member_of(directory, account_id, member_id)).role)
    await directory.remove_member(member_id)
    return Response(status_code=204)


# Member tokens


async def _credential_holder(
    directory: Directory, principal: Principal, account_id: str, member_id: str, *, new: bool = False
) -> Member:
    """The member whose own credentials (API tokens, password) are managed: by owners and admins (an admin not
    an owner's), or by itself. A `new` credential is refused to an erased member (409 `member_erased`)."""
    principal.require_manage(account_id, holder=member_id)
    member = await member_of(directory, account_id, member_id)
    if member.id != principal.member_id:
        guard_owner(principal, member.role)
    if new and member.erased_at is not None:
        raise member_erased(member_id)
    return member


@router.post(
    "/accounts/{account_id}/members/{member_id}/tokens",
    status_code=201,
    summary="Create a member API token",
    responses=errors(
        {422: "A field is missing, unknown or bad (`error.details` names each), or `expires_at` is in the past."}
    ),
)
async def create_token(
    account_id: str, member_id: str, body: TokenIn, principal: Caller, directory: Dir, tokens: Tokens
) -> TokenCreated:
    """A personal API token acting with the member's role. The response holds the secret as `token`, once."""
    await _credential_holder(directory, principal, account_id, member_id, new=True)
    token, secret = await tokens.create(member_id, name=body.name, **_expiry(body, directory))
    return TokenCreated(**TokenOut.of(token, now=directory.now()).model_dump(), token=secret)


@router.get("/accounts/{account_id}/members/{member_id}/tokens", summary="List a member's API tokens")
async def list_tokens(
    account_id: str, member_id: str, principal: Caller, directory: Dir, tokens: Tokens
) -> ListOf[TokenOut]:
    """Every token of the member, revoked and expired ones included (never a secret)."""
    await _credential_holder(directory, principal, account_id, member_id)
    now = directory.now()
    return ListOf(data=[TokenOut.of(token, now=now) for token in await tokens.list(member_id)])


@router.delete("/accounts/{account_id}/members/{member_id}/tokens/{token_id}", summary="Revoke a member API token")
async def revoke_token(
    account_id: str, member_id: str, token_id: str, principal: Caller, directory: Dir, tokens: Tokens
) -> TokenOut:
    """Revoke the token for good; it stops working at once."""
    await _credential_holder(directory, principal, account_id, member_id)
    if (await tokens.get(token_id)).member_id != member_id:
        raise NotFound(f"no token with id {token_id!r} of member {member_id!r}", code="member_token_not_found")
    return TokenOut.of(await tokens.revoke(token_id), now=directory.now())


# Member passwords


@router.put("/accounts/{account_id}/members/{member_id}/password", status_code=204, summary="Set a member's password")
async def set_password(
    account_id: str, member_id: str, body: PasswordIn, principal: Caller, directory: Dir, passwords: Passwords
) -> Response:
    """Set or replace the member's password (for the dashboard's sign-in). Only its argon2id hash is kept."""
    await _credential_holder(directory, principal, account_id, member_id, new=True)
    await passwords.set(member_id, body.password.get_secret_value())
    return Response(status_code=204)


@router.delete(
    "/accounts/{account_id}/members/{member_id}/password", status_code=204, summary="Remove a member's password"
)
async def remove_password(
    account_id: str, member_id: str, principal: Caller, directory: Dir, passwords: Passwords
) -> Response:
    """Remove the member's password: it can no longer sign in with one. Removing none is not an error."""
    await _credential_holder(directory, principal, account_id, member_id)
    await passwords.remove(member_id)
    return Response(status_code=204)


# Virtual keys


@router.get("/virtual-keys", summary="List virtual keys")
async def list_keys(
    principal: Caller, directory: Dir, account_id: str | None = None, member_id: str | None = None
) -> ListOf[KeyOut]:
    """Keys, optionally of one account and/or member; a token sees its own account's keys (a `member`, its own)."""
    account_id = account_id or principal.account_id
    if principal.role == Role.MEMBER:
        member_id = member_id or principal.member_id
    if account_id is not None:
        principal.require_read(account_id, member_id=member_id)
    keys = await directory.list_keys(account_id=account_id, member_id=member_id)
    return ListOf(data=await present_all(KeyOut, directory, keys))


@router.post(
    "/virtual-keys",
    status_code=201,
    summary="Create a virtual key",
    responses=errors(
        {
            404: "No account with this `account_id` (`account_not_found`).",
            422: "A field is missing, unknown or bad (`error.details` names each), `expires_at` is in the past, "
            "or `member_id` is not a member of the account.",
        }
    ),
)
async def create_key(body: KeyIn, principal: Caller, directory: Dir) -> KeyCreated:
    """Create a key. The response holds the secret as `key`, once: it is never shown again."""
    principal.require_manage(body.account_id)
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
async def get_key(key_id: str, principal: Caller, directory: Dir) -> KeyOut:
    return (await present_all(KeyOut, directory, [await _key_for(directory, principal, key_id)]))[0]


@router.patch("/virtual-keys/{key_id}", summary="Update a virtual key")
async def update_key(key_id: str, body: KeyPatch, principal: Caller, directory: Dir) -> KeyOut:
    """Change the given fields; null clears allowed_models (every model), agent_id, app, spend_cap, expires_at."""
    await _managed_key(directory, principal, key_id)
    changes = body.changes()
    changes.pop("expires_in_days", None)
    key = await directory.update_key(key_id, **(changes | _expiry(body, directory)))
    return (await present_all(KeyOut, directory, [key]))[0]


@router.post(
    "/virtual-keys/{key_id}/rotate",
    summary="Rotate a virtual key's secret",
    responses=errors({409: "The key is revoked (`key_revoked`)."}),
)
async def rotate_key(key_id: str, principal: Caller, directory: Dir, body: RotateIn | None = None) -> KeyCreated:
    """A new secret, returned once as `key`; the old one keeps working for `grace_period_seconds` (default 0)."""
    await _managed_key(directory, principal, key_id, by_holder=True)
    grace = body.grace_period_seconds if body is not None else 0
    key, secret = await directory.rotate_key(key_id, grace_seconds=grace)
    return KeyCreated(**(await present_all(KeyOut, directory, [key]))[0].model_dump(), key=secret)


@router.post("/virtual-keys/{key_id}/revoke", summary="Revoke a virtual key")
@router.delete("/virtual-keys/{key_id}", summary="Revoke a virtual key (same as POST .../revoke)")
async def revoke_key(key_id: str, principal: Caller, directory: Dir) -> KeyOut:
    """Revoke the key for good: every secret of it stops working at once.

    The key is kept, for the usage recorded with it: `GET` still answers it, with `status: revoked`.
    """
    await _managed_key(directory, principal, key_id, by_holder=True)
    return (await present_all(KeyOut, directory, [await directory.revoke_key(key_id)]))[0]


@router.post("/virtual-keys/{key_id}/disable", summary="Disable a virtual key until it is enabled again")
async def disable_key(key_id: str, principal: Caller, directory: Dir, body: DisableIn | None = None) -> KeyOut:
    """Stop the key (401 `key_disabled` with the reason) without revoking it; `.../enable` undoes this."""
    await _managed_key(directory, principal, key_id)
    reason = body.reason if body is not None else DisableIn().reason
    return (await present_all(KeyOut, directory, [await directory.disable_key(key_id, reason=reason)]))[0]


@router.post("/virtual-keys/{key_id}/enable", summary="Enable a disabled virtual key")
async def enable_key(key_id: str, principal: Caller, directory: Dir) -> KeyOut:
    """Let a key an alert or an admin disabled work again (a revoked or expired key stays stopped)."""
    await _managed_key(directory, principal, key_id)
    return (await present_all(KeyOut, directory, [await directory.enable_key(key_id)]))[0]
