"""`farebox members export` and `farebox members erase`: a member's personal data as JSON, and its erasure by
pseudonymisation (every amount of its usage kept), as the admin API's privacy routes do (`farebox.api.privacy`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from farebox.api.admin_schemas import MemberOut, present_all
from farebox.api.privacy import member_data
from farebox.cli.accounts import AccountCheck, MemberArg, member_in
from farebox.cli.output import Json, show_one
from farebox.cli.runtime import console, fail, print_json, with_directory
from farebox.ledger.directory import Directory
from farebox.ledger.member_tokens import MemberTokens
from farebox.ledger.reader import LedgerReader

__all__ = ["erase_member", "export_member"]


def export_member(
    member_id: MemberArg,
    account: AccountCheck = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON to this file (default: standard output).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Export everything farebox holds about a member as JSON: the member, its keys and API tokens (never a
    secret) and every usage event attributed to it. The data is JSON either way; with --json, so is what is said
    of a file written, and an error."""

    async def run(directory: Directory) -> int:
        member = await member_in(directory, member_id, account)
        chunks = member_data(
            member,
            directory=directory,
            tokens=MemberTokens(directory),
            reader=LedgerReader(directory.ledger),
            now=directory.now(),
        )
        if output is None:
            async for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.write(b"\n")
            sys.stdout.flush()
            return 0
        written = 0
        with output.open("wb") as sink:
            async for chunk in chunks:
                sink.write(chunk)
                written += len(chunk)
        return written

    written = with_directory(run)
    if output is not None and as_json:
        print_json({"written": written, "path": str(output)})
    elif output is not None:
        console.print(f"wrote {written} bytes to {output}", highlight=False)


def erase_member(
    member_id: MemberArg,
    account: AccountCheck = None,
    yes: Annotated[bool, typer.Option("--yes", help="Erase without asking (for scripts).")] = False,
    as_json: Json = False,
) -> None:
    """Erase a member: pseudonymise its name and e-mail address, drop its password, tokens and sessions, revoke and
    rename its keys; its usage and every amount stay. It cannot be undone."""
    if not yes and not typer.confirm(f"Erase member {member_id}? This cannot be undone", err=True):
        fail("not erased", code="usage_error", exit_code=1)

    async def run(directory: Directory) -> MemberOut:
        await member_in(directory, member_id, account)
        member = await directory.erase_member(member_id)
        return (await present_all(MemberOut, directory, [member]))[0]

    show_one(with_directory(run), as_json=as_json)
