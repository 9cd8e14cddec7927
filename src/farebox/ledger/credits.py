"""Prepaid credits in the ledger: top-ups, appended with who made them and when, and what each account holds.

`Credits.top_up` appends a `credit_top_ups` row and adds its amount to the account's `credit_balances` row in one
transaction. The first top-up also keeps the account's all-time spend at that moment (the opening), so spend from
before the credits never draws on them. The balance is `opening + granted - all-time spend`, the last read from
the account's `total` spend counter, which every proxied request and every ingested event moves in its own
transaction: spending credits writes nothing more. A void of an event recorded before the first top-up takes its
cost out of the opening as well (`unspend_before_opening`), so voiding it gives back no credits it never drew.

Which side of the first top-up an event falls on is decided by the order the ledger's writer committed them in:
exact with one writer per ledger, as the usage feed's order is (docs/ledger.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, RowMapping, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from farebox.core.clock import utcnow
from farebox.core.credits import MAX_GRANTED_NANO, Prepaid, balance_counter
from farebox.core.events import epoch_us, from_epoch_us
from farebox.core.money import format_usd
from farebox.errors import ValidationFailed
from farebox.ledger.actors import Actor
from farebox.ledger.directory import Directory
from farebox.ledger.rows import fetch_row
from farebox.ledger.schema import accounts, credit_balances, credit_top_ups
from farebox.ledger.spend import read_counters

__all__ = ["MAX_NOTE", "CreditStatement", "Credits", "TopUp", "clean_note", "read_prepaid", "unspend_before_opening"]

MAX_NOTE = 500
"""The longest note a top-up may carry, in characters."""
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class TopUp:
    """Credits given to an account: how much, why, who and when."""

    id: str
    account_id: str
    amount_nano: int
    note: str | None
    by: Actor
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CreditStatement:
    """An account's credits: what it was given, its all-time spend, and its top-ups (newest first)."""

    account_id: str
    prepaid: Prepaid | None
    """None: the account was never topped up and holds no credits (its spend is not limited by them)."""
    spent_nano: int
    """The account's all-time spend (its `total` spend counter)."""
    top_ups: tuple[TopUp, ...]

    @property
    def balance_nano(self) -> int | None:
        """What is left (negative when ingested usage overdrew it); None for an account without credits."""
        return None if self.prepaid is None else self.prepaid.balance_nano(self.spent_nano)


def clean_note(note: str | None) -> str | None:
    """A top-up's note without surrounding blanks; None for none or an empty one.

    Raises:
        ValidationFailed: longer than `MAX_NOTE` (422 on `note`).
    """
    cleaned = (note or "").strip()
    if len(cleaned) > MAX_NOTE:
        message = f"a note is at most {MAX_NOTE} characters"
        raise ValidationFailed(f"note: {message}", details=[{"loc": "note", "message": message}])
    return cleaned or None


def _invalid_amount(message: str) -> ValidationFailed:
    return ValidationFailed(f"amount: {message}", details=[{"loc": "amount", "message": message}])


def _top_up(row: RowMapping) -> TopUp:
    return TopUp(
        id=row["id"],
        account_id=row["account_id"],
        amount_nano=int(row["amount_nano"]),
        note=row["note"],
        by=Actor(row["actor_kind"], row["actor_member_id"]),
        created_at=from_epoch_us(int(row["created_at_us"])),
    )


def read_prepaid(connection: Connection, account_ids: Sequence[str]) -> dict[str, Prepaid]:
    """What those of the accounts that hold credits were given, by account id (the others are absent)."""
    found: dict[str, Prepaid] = {}
    wanted = list(dict.fromkeys(account_ids))
    for start in range(0, len(wanted), _CHUNK):
        query = select(credit_balances).where(credit_balances.c.account_id.in_(wanted[start : start + _CHUNK]))
        for row in connection.execute(query).mappings():
            found[row["account_id"]] = Prepaid(
                account_id=row["account_id"],
                granted_nano=int(row["granted_nano"]),
                opening_nano=int(row["opening_nano"]),
                topped_up_at=from_epoch_us(int(row["topped_up_at_us"])),
            )
    return found


def _all_time_spend(connection: Connection, account_id: str) -> int:
    counter = balance_counter(account_id)
    return read_counters(connection, [counter]).get(counter, 0)


def unspend_before_opening(connection: Connection, *, account_id: str, costs: Sequence[tuple[int, int]]) -> None:
    """Taking costs off events of an account (voids, reprices): what left events recorded before its first top-up
    leaves the opening with the spend.

    Runs in the adjustment's transaction. `costs` are (the event's `recorded_at_us`, the cost taken off it; negative
    for a cost a reprice adds). The adjustment moves the account's all-time spend; for events the credits never paid
    for, the opening moves by as much, and the balance stays where it was.
    """
    balances = credit_balances.c
    opened = connection.scalar(select(balances.opened_at_us).where(balances.account_id == account_id))
    if opened is None:
        return
    before = sum(cost for recorded_at_us, cost in costs if recorded_at_us < opened)
    if before:
        connection.execute(
            update(credit_balances)
            .where(balances.account_id == account_id)
            .values(opening_nano=balances.opening_nano - before)
        )


class Credits:
    """Top-ups and balances of prepaid credits. Every method is a coroutine; none blocks the event loop.

    Args:
        directory: the directory of the same ledger (ids, the clock, accounts; told of every top-up, so the caches
            of caps and balances read them again).
        clock: the current time (aware); defaults to the directory's.
    """

    def __init__(self, directory: Directory, *, clock: Callable[[], datetime] | None = None) -> None:
        self._directory = directory
        self._ledger = directory.ledger
        self._clock = clock or directory.now

    async def top_up(
        self, account_id: str, *, amount_nano: int, by: Actor, note: str | None = None
    ) -> tuple[TopUp, int]:
        """Give the account `amount_nano` more credits; the top-up and the balance right after it.

        Raises:
            NotFound: no account has this id.
            ValidationFailed: the amount is not above zero, or would take what the account was given past
                `MAX_GRANTED_NANO`; the note is too long (422).
        """
        if amount_nano <= 0:
            raise _invalid_amount("must be more than zero")
        if amount_nano > MAX_GRANTED_NANO:
            raise _invalid_amount(f"must be at most {format_usd(MAX_GRANTED_NANO)} USD")
        top_up = TopUp(self._directory.stamp()[0], account_id, amount_nano, clean_note(note), by, self._clock())
        created_at_us = epoch_us(top_up.created_at)

        def write(connection: Connection) -> int:
            fetch_row(connection, accounts, account_id, what="account")
            spent = _all_time_spend(connection, account_id)
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(credit_balances).values(
                account_id=account_id,
                granted_nano=amount_nano,
                opening_nano=spent,
                # The writer's clock, as events' `recorded_at_us` is: a void compares the two.
                opened_at_us=epoch_us(utcnow()),
                topped_up_at_us=created_at_us,
            )
            granted = credit_balances.c.granted_nano + statement.excluded.granted_nano
            statement = statement.on_conflict_do_update(
                index_elements=["account_id"],
                set_={"granted_nano": granted, "topped_up_at_us": statement.excluded.topped_up_at_us},
            )
            returned = statement.returning(credit_balances.c.granted_nano, credit_balances.c.opening_nano)
            total, opening = connection.execute(returned).one()
            if total > MAX_GRANTED_NANO:  # the writer rolls this job back to its savepoint
                raise _invalid_amount(f"would give the account more than {format_usd(MAX_GRANTED_NANO)} USD in all")
            connection.execute(
                insert(credit_top_ups).values(
                    id=top_up.id,
                    account_id=account_id,
                    amount_nano=amount_nano,
                    note=top_up.note,
                    actor_kind=by.kind,
                    actor_member_id=by.member_id,
                    created_at_us=created_at_us,
                )
            )
            return int(opening) + int(total) - spent

        balance = await self._ledger._write(write)
        self._directory.changed()
        return top_up, balance

    async def prepaid(self, account_id: str) -> Prepaid | None:
        """What the account was given in credits; None when it was never topped up."""
        return await self._ledger._read(lambda connection: read_prepaid(connection, [account_id]).get(account_id))

    async def statement(self, account_id: str) -> CreditStatement:
        """The account's credits, its all-time spend and every top-up, newest first, from one read.

        Raises:
            NotFound: no account has this id.
        """
        top_ups = (
            select(credit_top_ups)
            .where(credit_top_ups.c.account_id == account_id)
            .order_by(credit_top_ups.c.created_at_us.desc(), credit_top_ups.c.id.desc())
        )

        def fetch(connection: Connection) -> CreditStatement:
            fetch_row(connection, accounts, account_id, what="account")
            return CreditStatement(
                account_id=account_id,
                prepaid=read_prepaid(connection, [account_id]).get(account_id),
                spent_nano=_all_time_spend(connection, account_id),
                top_ups=tuple(_top_up(row) for row in connection.execute(top_ups).mappings()),
            )

        return await self._ledger._read(fetch)
