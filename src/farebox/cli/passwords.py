"""`farebox members password`: set, replace or remove a member's password (for the dashboard's sign-in).

The password is typed twice at a hidden prompt, or read from standard input with `--password-stdin` for
scripts; never taken from the command line, where the shell's history and other users' `ps` would keep it.
It is never printed: the command prints the member, whose `has_password` says what was done.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from farebox.api.admin_schemas import MemberOut, present_all
from farebox.cli.accounts import AccountCheck, MemberArg, member_in
from farebox.cli.output import Json, show_one
from farebox.cli.runtime import fail, with_directory
from farebox.ledger.directory import Directory
from farebox.ledger.member_passwords import MemberPasswords

__all__ = ["set_password"]


def _new_password(*, from_stdin: bool) -> str:
    """The password from standard input (less the one line ending `echo` or a file adds), or typed twice."""
    if from_stdin:
        return sys.stdin.read().removesuffix("\n").removesuffix("\r")
    # The prompts go to stderr, so that with --json stdout holds the JSON and nothing else.
    typed: str = typer.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)
    return typed


def set_password(
    member_id: MemberArg,
    account: AccountCheck = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts).")
    ] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the member's password.")] = False,
    as_json: Json = False,
) -> None:
    """Set or replace a member's password, typed twice at a hidden prompt; or remove it with --remove."""
    if remove and password_stdin:
        fail("give --password-stdin or --remove, not both", code="usage_error")

    async def run(directory: Directory) -> MemberOut:
        await member_in(directory, member_id, account)  # before the prompt: a wrong id is told at once
        passwords = MemberPasswords(directory)
        if remove:
            member = await passwords.remove(member_id)
        else:
            password = await asyncio.to_thread(_new_password, from_stdin=password_stdin)
            member = await passwords.set(member_id, password)
        return (await present_all(MemberOut, directory, [member]))[0]

    show_one(with_directory(run), as_json=as_json)
