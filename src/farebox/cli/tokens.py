"""`farebox tokens`: members' personal API tokens for the admin API, from the terminal.

A token's secret is printed once, by `tokens create`, and never again; listings show its first characters.
"""

from __future__ import annotations

from typing import Annotated

import typer

from farebox.api.admin_schemas import TokenCreated, TokenOut
from farebox.cli.accounts import AccountId, ExpiresAt, ExpiresInDays, expiry, member_in
from farebox.cli.output import Json, command_group, show_one, show_table
from farebox.cli.runtime import console, print_json, with_directory
from farebox.ledger.directory import Directory
from farebox.ledger.member_tokens import MemberTokens

__all__ = ["tokens_app"]

tokens_app = command_group(help="Members' API tokens for the admin API: create, list, revoke.")

MemberId = Annotated[str, typer.Option("--member", help="Member id.")]
_COLUMNS = ("id", "name", "token_prefix", "status", "expires_at", "last_used_at", "created_at")


@tokens_app.command("create")
def create_token(
    account: AccountId,
    member: MemberId,
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. 'laptop'.")],
    expires_in_days: ExpiresInDays = None,
    expires_at: ExpiresAt = None,
    as_json: Json = False,
) -> None:
    """Create an API token acting with the member's role, and print its secret, once."""

    async def run(directory: Directory) -> TokenCreated:
        await member_in(directory, member, account)
        token, secret = await MemberTokens(directory).create(
            member, name=name, **expiry(directory, expires_in_days, expires_at)
        )
        return TokenCreated(**TokenOut.of(token, now=directory.now()).model_dump(), token=secret)

    created = with_directory(run)
    if as_json:
        print_json(created.model_dump(mode="json"))
    else:
        show_one(TokenOut.model_validate(created.model_dump()), as_json=False)
        console.print("\nsecret:", created.token, soft_wrap=True, highlight=False)
    typer.echo("warning: Store this secret now: it will not be shown again.", err=True)


@tokens_app.command("list")
def list_tokens(account: AccountId, member: MemberId, as_json: Json = False) -> None:
    """A member's tokens, revoked and expired ones included (never a secret)."""

    async def run(directory: Directory) -> list[TokenOut]:
        await member_in(directory, member, account)
        now = directory.now()
        return [TokenOut.of(token, now=now) for token in await MemberTokens(directory).list(member)]

    show_table(with_directory(run), _COLUMNS, as_json=as_json, title="API tokens")


@tokens_app.command("revoke")
def revoke_token(token_id: Annotated[str, typer.Argument(help="Token id.")], as_json: Json = False) -> None:
    """Revoke a token for good: it stops working at once."""

    async def run(directory: Directory) -> TokenOut:
        return TokenOut.of(await MemberTokens(directory).revoke(token_id), now=directory.now())

    show_one(with_directory(run), as_json=as_json)
