"""`farebox accounts|members|keys`: manage accounts, their members and virtual keys from the terminal.

Every command prints a rich table, or with `--json` the same JSON the admin API answers. A key's
secret is printed once, by `keys create` and `keys rotate`, and never again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from farebox.api.admin_schemas import AccountOut, KeyCreated, KeyOut, MemberOut, present, present_all
from farebox.cli.output import Json, command_group, rate_option, show_one, show_table, usd_option
from farebox.cli.runtime import console, fail, print_json, with_directory
from farebox.core.owners import Member, Plan, Role
from farebox.core.periods import Period
from farebox.errors import NotFound
from farebox.ledger.directory import Directory

__all__ = [
    "AccountCheck",
    "AccountId",
    "ExpiresAt",
    "ExpiresInDays",
    "MemberArg",
    "Name",
    "accounts_app",
    "expiry",
    "keys_app",
    "member_in",
    "members_app",
]

accounts_app = command_group(help="Accounts (organisations): create, list, show, update.")
members_app = command_group(help="Members of an account: add, list, show, update, remove, password.")
keys_app = command_group(help="Virtual keys: create, list, show, update, rotate, revoke.")

_ONCE = "Store this secret now: it will not be shown again."


def _instant(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date-time: {value!r}") from None


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


Name = Annotated[str, typer.Option("--name", help="Display name.")]
NewName = Annotated[str | None, typer.Option("--name", help="New display name.")]
AccountId = Annotated[str, typer.Option("--account", help="Account id.")]
AccountCheck = Annotated[str | None, typer.Option("--account", help="Account id (checked when given).")]
Cap = Annotated[
    int | None, typer.Option("--cap", parser=usd_option, metavar="USD", help="Spend cap per period in USD, e.g. 50.00.")
]
TaxRateOption = Annotated[
    int | None,
    typer.Option(
        "--tax-rate", parser=rate_option, metavar="RATE", help="The billing export's tax rate, e.g. 0.0825 for 8.25 %."
    ),
]
NoCap = Annotated[bool, typer.Option("--no-cap", help="Remove the spend cap.")]
CapPeriod = Annotated[Period | None, typer.Option("--period", help="Period the spend cap applies to.")]
Models = Annotated[str | None, typer.Option("--models", metavar="A,B", help="Comma-separated models the key may call.")]
Agent = Annotated[str | None, typer.Option("--agent", help="Agent id the key's usage is attributed to.")]
App = Annotated[str | None, typer.Option("--app", help="App the key's usage is attributed to.")]
Tags = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat for several).")]
ExpiresInDays = Annotated[int | None, typer.Option("--expires-in-days", min=1, help="Expire N days from now.")]
ExpiresAt = Annotated[
    datetime | None,
    typer.Option("--expires-at", parser=_instant, metavar="DATETIME", help="Expire at this ISO time (UTC if naive)."),
]


def _either(flag: bool, value: object, *, names: str) -> None:
    if flag and value is not None:
        fail(f"give {names}, not both", code="usage_error")


def _cap_changes(cap: int | None, no_cap: bool, period: Period | None) -> dict[str, Any]:
    _either(no_cap, cap, names="--cap or --no-cap")
    changes: dict[str, Any] = {"spend_cap_nano": None} if no_cap else {} if cap is None else {"spend_cap_nano": cap}
    return changes | ({} if period is None else {"cap_period": period})


def expiry(directory: Directory, days: int | None, at: datetime | None) -> dict[str, Any]:
    """`expires_at` from `--expires-in-days` or `--expires-at` (at most one), or nothing."""
    if days is not None and at is not None:
        fail("give --expires-in-days or --expires-at, not both", code="usage_error")
    if days is not None:
        return {"expires_at": directory.now() + timedelta(days=days)}
    return {} if at is None else {"expires_at": at}


def _secret(created: KeyCreated, *, as_json: bool) -> None:
    """Print a key with its secret, the only time it is shown."""
    if as_json:
        print_json(created.model_dump(mode="json"))
    else:
        show_one(KeyOut.model_validate(created.model_dump()), as_json=False)
        console.print("\nsecret:", created.key, soft_wrap=True, highlight=False)
    typer.echo(f"warning: {_ONCE}", err=True)


# Accounts


@accounts_app.command("create")
def create_account(
    name: Name,
    plan: Annotated[Plan, typer.Option("--plan")] = Plan.FREE,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA timezone; caps reset at its midnight.")] = "UTC",
    cap: Cap = None,
    period: Annotated[Period, typer.Option("--period", help="Period the spend cap applies to.")] = Period.MONTHLY,
    tax_rate: TaxRateOption = None,
    as_json: Json = False,
) -> None:
    """Create an account."""

    async def run(directory: Directory) -> AccountOut:
        account = await directory.create_account(
            name=name, plan=plan, timezone=timezone, spend_cap_nano=cap, cap_period=period, tax_rate_ppm=tax_rate or 0
        )
        return present(AccountOut, account, spent=0, now=directory.now())

    show_one(with_directory(run), as_json=as_json)


@accounts_app.command("list")
def list_accounts(as_json: Json = False) -> None:
    """List every account."""

    async def run(directory: Directory) -> list[AccountOut]:
        return await present_all(AccountOut, directory, await directory.list_accounts())

    columns = ("id", "name", "plan", "timezone", "spend_cap", "spend", "cap_period", "percent_used")
    show_table(with_directory(run), columns, as_json=as_json, title="Accounts")


@accounts_app.command("show")
def show_account(account_id: Annotated[str, typer.Argument(help="Account id.")], as_json: Json = False) -> None:
    """Show one account and its spend in the current cap period."""

    async def run(directory: Directory) -> AccountOut:
        return (await present_all(AccountOut, directory, [await directory.get_account(account_id)]))[0]

    show_one(with_directory(run), as_json=as_json)


@accounts_app.command("update")
def update_account(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    name: NewName = None,
    plan: Annotated[Plan | None, typer.Option("--plan")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="IANA timezone.")] = None,
    cap: Cap = None,
    no_cap: NoCap = False,
    period: CapPeriod = None,
    tax_rate: TaxRateOption = None,
    as_json: Json = False,
) -> None:
    """Change an account's name, plan, timezone, spend cap or tax rate."""
    given = {"name": name, "plan": plan, "timezone": timezone, "tax_rate_ppm": tax_rate}
    changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    changes |= _cap_changes(cap, no_cap, period)

    async def run(directory: Directory) -> AccountOut:
        account = await directory.update_account(account_id, **changes)
        return (await present_all(AccountOut, directory, [account]))[0]

    show_one(with_directory(run), as_json=as_json)


# Members


async def member_in(directory: Directory, member_id: str, account_id: str | None) -> Member:
    """The member, checked to be in `account_id` when that is given (NotFound otherwise)."""
    member = await directory.get_member(member_id)
    if account_id is not None and member.account_id != account_id:
        raise NotFound(f"no member with id {member_id!r} in account {account_id!r}")
    return member


MemberArg = Annotated[str, typer.Argument(help="Member id.")]
_MEMBER_COLUMNS = ("id", "email", "name", "role", "spend_cap", "spend", "cap_period", "percent_used", "has_password")


@members_app.command("add")
def add_member(
    account: AccountId,
    email: Annotated[str, typer.Option("--email", help="E-mail address, unique in the account.")],
    name: Name,
    role: Annotated[Role, typer.Option("--role")] = Role.MEMBER,
    cap: Cap = None,
    period: Annotated[Period, typer.Option("--period", help="Period the spend cap applies to.")] = Period.MONTHLY,
    as_json: Json = False,
) -> None:
    """Add a member to an account."""

    async def run(directory: Directory) -> MemberOut:
        member = await directory.create_member(
            account, email=email, name=name, role=role, spend_cap_nano=cap, cap_period=period
        )
        return present(MemberOut, member, spent=0, now=directory.now())

    show_one(with_directory(run), as_json=as_json)


@members_app.command("list")
def list_members(account: AccountId, as_json: Json = False) -> None:
    """List an account's members."""

    async def run(directory: Directory) -> list[MemberOut]:
        return await present_all(MemberOut, directory, await directory.list_members(account))

    show_table(with_directory(run), _MEMBER_COLUMNS, as_json=as_json, title="Members")


@members_app.command("show")
def show_member(member_id: MemberArg, account: AccountCheck = None, as_json: Json = False) -> None:
    """Show one member and its spend in the current cap period."""

    async def run(directory: Directory) -> MemberOut:
        return (await present_all(MemberOut, directory, [await member_in(directory, member_id, account)]))[0]

    show_one(with_directory(run), as_json=as_json)


@members_app.command("update")
def update_member(
    member_id: MemberArg,
    account: AccountCheck = None,
    email: Annotated[str | None, typer.Option("--email", help="New e-mail address.")] = None,
    name: NewName = None,
    role: Annotated[Role | None, typer.Option("--role")] = None,
    cap: Cap = None,
    no_cap: NoCap = False,
    period: CapPeriod = None,
    as_json: Json = False,
) -> None:
    """Change a member's e-mail, name, role or spend cap."""
    changes: dict[str, Any] = {k: v for k, v in {"email": email, "name": name, "role": role}.items() if v is not None}
    changes |= _cap_changes(cap, no_cap, period)

    async def run(directory: Directory) -> MemberOut:
        await member_in(directory, member_id, account)
        member = await directory.update_member(member_id, **changes)
        return (await present_all(MemberOut, directory, [member]))[0]

    show_one(with_directory(run), as_json=as_json)


@members_app.command("remove")
def remove_member(member_id: MemberArg, account: AccountCheck = None, as_json: Json = False) -> None:
    """Remove a member. Its keys are revoked (and kept, detached from it)."""

    async def run(directory: Directory) -> MemberOut:
        await member_in(directory, member_id, account)
        return present(MemberOut, await directory.remove_member(member_id), spent=0, now=directory.now())

    removed = with_directory(run)
    if as_json:
        print_json({"removed": removed.model_dump(mode="json")})
    else:
        console.print(f"removed member {removed.id} ({removed.email}); its keys are revoked", highlight=False)


# Virtual keys


KeyArg = Annotated[str, typer.Argument(help="Virtual key id.")]
_KEY_COLUMNS = ("id", "name", "key_prefix", "status", "spend_cap", "spend", "cap_period", "expires_at")


@keys_app.command("create")
def create_key(
    account: AccountId,
    name: Name,
    member: Annotated[str | None, typer.Option("--member", help="Member the key's usage is attributed to.")] = None,
    cap: Cap = None,
    period: Annotated[Period, typer.Option("--period", help="Period the spend cap applies to.")] = Period.MONTHLY,
    models: Models = None,
    agent: Agent = None,
    app: App = None,
    tag: Tags = None,
    expires_in_days: ExpiresInDays = None,
    expires_at: ExpiresAt = None,
    as_json: Json = False,
) -> None:
    """Create a virtual key and print its secret, once."""
    allowed = None if models is None else _names(models)

    async def run(directory: Directory) -> KeyCreated:
        key, secret = await directory.create_key(
            account,
            member_id=member,
            name=name,
            allowed_models=allowed,
            agent_id=agent,
            app=app,
            tags=tag or [],
            spend_cap_nano=cap,
            cap_period=period,
            **expiry(directory, expires_in_days, expires_at),
        )
        return KeyCreated(**present(KeyOut, key, spent=0, now=directory.now()).model_dump(), key=secret)

    _secret(with_directory(run), as_json=as_json)


@keys_app.command("list")
def list_keys(
    account: Annotated[str | None, typer.Option("--account", help="Only this account's keys.")] = None,
    member: Annotated[str | None, typer.Option("--member", help="Only this member's keys.")] = None,
    as_json: Json = False,
) -> None:
    """List virtual keys (never their secrets)."""

    async def run(directory: Directory) -> list[KeyOut]:
        return await present_all(KeyOut, directory, await directory.list_keys(account_id=account, member_id=member))

    show_table(with_directory(run), _KEY_COLUMNS, as_json=as_json, title="Virtual keys")


@keys_app.command("show")
def show_key(key_id: KeyArg, as_json: Json = False) -> None:
    """Show one key (not its secret) and its spend in the current cap period."""

    async def run(directory: Directory) -> KeyOut:
        return (await present_all(KeyOut, directory, [await directory.get_key(key_id)]))[0]

    show_one(with_directory(run), as_json=as_json)


@keys_app.command("update")
def update_key(
    key_id: KeyArg,
    name: NewName = None,
    models: Models = None,
    all_models: Annotated[bool, typer.Option("--all-models", help="Allow every model.")] = False,
    agent: Agent = None,
    app: App = None,
    tag: Tags = None,
    clear_tags: Annotated[bool, typer.Option("--clear-tags", help="Remove every tag.")] = False,
    cap: Cap = None,
    no_cap: NoCap = False,
    period: CapPeriod = None,
    expires_in_days: ExpiresInDays = None,
    expires_at: ExpiresAt = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="Never expire.")] = False,
    as_json: Json = False,
) -> None:
    """Change a key's name, models, agent, app, tags, spend cap or expiry (an empty --agent/--app clears it)."""
    _either(all_models, models, names="--models or --all-models")
    _either(clear_tags, tag, names="--tag or --clear-tags")
    _either(no_expiry, expires_in_days or expires_at, names="an expiry or --no-expiry")
    changes: dict[str, Any] = {k: v for k, v in {"name": name, "agent_id": agent, "app": app}.items() if v is not None}
    if models is not None or all_models:
        changes["allowed_models"] = None if all_models else _names(models or "")
    if tag is not None or clear_tags:
        changes["tags"] = tag or []
    changes |= _cap_changes(cap, no_cap, period) | ({"expires_at": None} if no_expiry else {})

    async def run(directory: Directory) -> KeyOut:
        key = await directory.update_key(key_id, **changes, **expiry(directory, expires_in_days, expires_at))
        return (await present_all(KeyOut, directory, [key]))[0]

    show_one(with_directory(run), as_json=as_json)


@keys_app.command("rotate")
def rotate_key(
    key_id: KeyArg,
    grace: Annotated[int, typer.Option("--grace", min=0, help="Seconds the old secret keeps working.")] = 0,
    as_json: Json = False,
) -> None:
    """Give a key a new secret, printed once; the old one stops after --grace seconds."""

    async def run(directory: Directory) -> KeyCreated:
        key, secret = await directory.rotate_key(key_id, grace_seconds=grace)
        out = (await present_all(KeyOut, directory, [key]))[0]
        return KeyCreated(**out.model_dump(), key=secret)

    _secret(with_directory(run), as_json=as_json)


@keys_app.command("revoke")
def revoke_key(key_id: KeyArg, as_json: Json = False) -> None:
    """Revoke a key for good: every secret of it stops working at once."""

    async def run(directory: Directory) -> KeyOut:
        return (await present_all(KeyOut, directory, [await directory.revoke_key(key_id)]))[0]

    show_one(with_directory(run), as_json=as_json)
