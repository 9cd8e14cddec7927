"""Members' passwords against real ledgers: SQLite, and PostgreSQL with TEST_PG_URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import Parameters, Type, profiles
from sqlalchemy import select

from farebox.core.passwords import PasswordHashes
from farebox.errors import NotFound, ValidationFailed
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.member_passwords import MemberPasswords
from farebox.ledger.schema import members

pytestmark = pytest.mark.anyio

START = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@dataclass
class Clock:
    at: datetime = START

    def __call__(self) -> datetime:
        return self.at


class CountingHashes(PasswordHashes):
    """The cheapest argon2id hashes, counting what each sign-in spends its time on."""

    def __init__(self, parameters: Parameters = profiles.CHEAPEST) -> None:
        super().__init__(parameters)
        self.calls: list[str] = []

    def hash(self, password: str) -> str:
        self.calls.append("hash")
        return super().hash(password)

    def matches(self, stored: str, password: str) -> bool:
        self.calls.append("matches")
        return super().matches(stored, password)

    def waste(self, password: str) -> None:
        self.calls.append("waste")
        super().waste(password)


@dataclass
class World:
    directory: Directory
    hashes: CountingHashes
    passwords: MemberPasswords
    clock: Clock
    ids: dict[str, str] = field(default_factory=dict)


@pytest.fixture
async def world(ledger: Ledger) -> World:
    clock = Clock()
    directory = Directory(ledger, clock=clock)
    hashes = CountingHashes()
    world = World(directory, hashes, MemberPasswords(directory, hashes=hashes), clock)
    world.ids["acme"] = (await directory.create_account(name="Acme")).id
    world.ids["ada"] = (await directory.create_member(world.ids["acme"], email="Ada@Acme.test", name="Ada")).id
    return world


async def _row(ledger: Ledger, member_id: str) -> dict[str, Any]:
    query = select(members).where(members.c.id == member_id)
    return dict(await ledger._read(lambda c: c.execute(query).mappings().one()))


async def test_a_password_is_kept_only_as_its_argon2id_hash_and_signs_the_member_in(
    ledger: Ledger, world: World
) -> None:
    before = await world.directory.get_member(world.ids["ada"])
    assert (before.has_password, before.password_changed_at) == (False, None)
    world.clock.at = START + timedelta(hours=1)
    member = await world.passwords.set(world.ids["ada"], PASSWORD)
    assert (member.id, member.has_password, member.password_changed_at) == (world.ids["ada"], True, world.clock.at)
    assert member.updated_at == world.clock.at
    assert await world.directory.get_member(world.ids["ada"]) == member
    row = await _row(ledger, world.ids["ada"])
    assert row["password_hash"].startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert not any(PASSWORD in str(value) for value in row.values())

    for email in ("ada@acme.test", " ADA@acme.TEST "):
        assert await world.passwords.verify(email, PASSWORD) == member
    assert await world.passwords.verify("ada@acme.test", PASSWORD, account_id=world.ids["acme"]) == member
    assert await world.passwords.verify("ada@acme.test", PASSWORD + "!") is None
    assert await world.passwords.verify("ada@acme.test", PASSWORD, account_id="another") is None
    assert await world.passwords.verify("bob@acme.test", PASSWORD) is None


async def test_replacing_a_password_retires_the_old_one(world: World) -> None:
    await world.passwords.set(world.ids["ada"], PASSWORD)
    world.clock.at = START + timedelta(days=1)
    replaced = await world.passwords.set(world.ids["ada"], "tr0ub4dor & 3, for good")
    assert replaced.password_changed_at == world.clock.at
    assert await world.passwords.verify("ada@acme.test", PASSWORD) is None
    assert await world.passwords.verify("ada@acme.test", "tr0ub4dor & 3, for good") == replaced


async def test_removing_a_password_stops_its_sign_in_and_removing_none_changes_nothing(
    ledger: Ledger, world: World
) -> None:
    await world.passwords.set(world.ids["ada"], PASSWORD)
    world.clock.at = START + timedelta(days=1)
    removed = await world.passwords.remove(world.ids["ada"])
    assert (removed.has_password, removed.password_changed_at) == (False, world.clock.at)
    assert (await _row(ledger, world.ids["ada"]))["password_hash"] is None
    assert await world.passwords.verify("ada@acme.test", PASSWORD) is None
    world.clock.at = START + timedelta(days=2)
    assert await world.passwords.remove(world.ids["ada"]) == removed


async def test_a_password_that_breaks_the_rule_is_refused_and_nothing_is_hashed(ledger: Ledger, world: World) -> None:
    for password in ("short", "x" * 1_025, "ADA@acme.test"):
        with pytest.raises(ValidationFailed) as refused:
            await world.passwords.set(world.ids["ada"], password)
        assert refused.value.details is not None and refused.value.details[0]["loc"] == "password"
    assert world.hashes.calls == []
    assert (await _row(ledger, world.ids["ada"]))["password_hash"] is None


async def test_an_unknown_member_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.passwords.set("ghost", PASSWORD)
    with pytest.raises(NotFound):
        await world.passwords.remove("ghost")


async def test_every_failed_sign_in_spends_one_argon2_check_whether_or_not_the_member_exists(world: World) -> None:
    """Timing does not tell an unknown e-mail, or a member without a password, from a wrong password."""
    other = (await world.directory.create_member(world.ids["acme"], email="bob@acme.test", name="Bob")).id
    await world.passwords.set(other, PASSWORD)
    world.hashes.calls.clear()
    for email, password in [
        ("nobody@acme.test", PASSWORD),  # no such member
        ("ada@acme.test", PASSWORD),  # a member without a password
        ("bob@acme.test", "wrong horse battery"),  # a wrong password
        ("bob@acme.test", PASSWORD),  # the right one
    ]:
        world.hashes.calls.clear()
        found = await world.passwords.verify(email, password)
        assert world.hashes.calls in (["waste"], ["matches"]), (email, world.hashes.calls)
        assert (found is not None) == (email == "bob@acme.test" and password == PASSWORD)


async def test_a_person_in_two_accounts_signs_in_to_the_membership_whose_password_matches(world: World) -> None:
    globex = (await world.directory.create_account(name="Globex")).id
    again = (await world.directory.create_member(globex, email="ada@acme.test", name="Ada")).id
    await world.passwords.set(world.ids["ada"], PASSWORD)
    await world.passwords.set(again, "another long password")
    world.hashes.calls.clear()
    found = await world.passwords.verify("ada@acme.test", "another long password")
    assert found is not None and found.id == again
    assert world.hashes.calls == ["matches", "matches"], "every membership is checked, whichever matches"
    assert await world.passwords.verify("ada@acme.test", "another long password", account_id=world.ids["acme"]) is None
    await world.passwords.set(again, PASSWORD)
    found = await world.passwords.verify("ada@acme.test", PASSWORD)
    assert found is not None and found.id == world.ids["ada"], "the same password in both: the oldest membership"


async def test_a_hash_made_with_older_parameters_is_replaced_at_the_next_sign_in(ledger: Ledger, world: World) -> None:
    await world.passwords.set(world.ids["ada"], PASSWORD)
    old = (await _row(ledger, world.ids["ada"]))["password_hash"]
    stronger = CountingHashes(
        Parameters(Type.ID, 19, salt_len=16, hash_len=32, time_cost=2, memory_cost=16, parallelism=1)
    )
    current = MemberPasswords(world.directory, hashes=stronger)
    world.clock.at = START + timedelta(days=1)

    assert await current.verify("ada@acme.test", "not it at all") is None
    assert (await _row(ledger, world.ids["ada"]))["password_hash"] == old, "only a right password is rehashed"
    member = await current.verify("ada@acme.test", PASSWORD)
    assert member is not None and member.password_changed_at == START
    row = await _row(ledger, world.ids["ada"])
    assert row["password_hash"].startswith("$argon2id$v=19$m=16,t=2,p=1$")
    assert row["password_changed_at"] == int(START.timestamp()), "the same password: not a change"
    stronger.calls.clear()
    assert await current.verify("ada@acme.test", PASSWORD) == member
    assert stronger.calls == ["matches"], "rehashed once"


async def test_a_removed_member_cannot_sign_in(world: World) -> None:
    await world.passwords.set(world.ids["ada"], PASSWORD)
    await world.directory.remove_member(world.ids["ada"])
    assert await world.passwords.verify("ada@acme.test", PASSWORD) is None
