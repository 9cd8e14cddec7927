"""Dashboard sessions against real ledgers: SQLite, and PostgreSQL with TEST_PG_URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import profiles

from farebox.core.keys import hash_secret
from farebox.core.owners import Role
from farebox.core.passwords import PasswordHashes
from farebox.errors import NotFound
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.member_passwords import MemberPasswords
from farebox.ledger.schema import dashboard_sessions
from farebox.ledger.sessions import DashboardSessions

pytestmark = pytest.mark.anyio

START = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
LIFETIME, IDLE = timedelta(hours=12), timedelta(hours=2)


@dataclass
class Clock:
    at: datetime = START

    def __call__(self) -> datetime:
        return self.at


@dataclass
class World:
    directory: Directory
    sessions: DashboardSessions
    passwords: MemberPasswords
    clock: Clock
    account: str
    member: str


@pytest.fixture
async def world(ledger: Ledger) -> World:
    clock = Clock()
    directory = Directory(ledger, clock=clock)
    account = await directory.create_account(name="Acme")
    member = await directory.create_member(account.id, email="mo@acme.test", name="Mo", role=Role.ADMIN)
    sessions = DashboardSessions(ledger, lifetime=LIFETIME, idle=IDLE, clock=clock)
    passwords = MemberPasswords(directory, hashes=PasswordHashes(profiles.CHEAPEST))
    return World(directory, sessions, passwords, clock, account.id, member.id)


async def test_a_member_session_is_found_by_its_secret_with_the_member_s_current_role(
    world: World, ledger: Ledger
) -> None:
    secret = await world.sessions.begin(member_id=world.member)
    found = await world.sessions.find(secret)
    assert found is not None
    assert (found.account_id, found.member_id, found.role, found.is_master) == (
        world.account,
        world.member,
        Role.ADMIN,
        False,
    )
    assert (found.created_at, found.expires_at) == (START, START + LIFETIME)

    await world.directory.update_member(world.member, role=Role.BILLING)
    assert (await world.sessions.find(secret)) is not None
    assert (await world.sessions.find(secret)).role is Role.BILLING

    rows = await ledger._read(lambda c: c.execute(dashboard_sessions.select()).mappings().all())
    assert [row["secret_hash"] for row in rows] == [hash_secret(secret)]
    assert all(secret not in str(value) for row in rows for value in row.values())


async def test_the_operator_s_session_keeps_its_master_key_check(world: World) -> None:
    secret = await world.sessions.begin(member_id=None, master_check="c" * 64)
    found = await world.sessions.find(secret)
    assert found is not None and found.is_master
    assert (found.account_id, found.role, found.master_check) == (None, None, "c" * 64)


async def test_a_session_ends_at_its_expiry_after_idling_and_when_ended(world: World) -> None:
    busy = await world.sessions.begin(member_id=world.member)
    idle = await world.sessions.begin(member_id=world.member)
    for _ in range(6):  # busy for 11 h 54 min: one request every 1 h 59 min keeps it from idling
        world.clock.at += timedelta(hours=1, minutes=59)
        assert await world.sessions.find(busy) is not None
    assert await world.sessions.find(idle) is None
    world.clock.at = START + LIFETIME
    assert await world.sessions.find(busy) is None

    world.clock.at = START
    ended = await world.sessions.begin(member_id=world.member)
    await world.sessions.end(ended)
    assert await world.sessions.find(ended) is None
    assert await world.sessions.find("fbx_ds_not-a-session") is None
    assert await world.sessions.find("") is None


async def test_last_seen_is_written_at_most_once_a_minute(world: World) -> None:
    secret = await world.sessions.begin(member_id=world.member)
    world.clock.at += timedelta(seconds=59)
    assert (await world.sessions.find(secret)).last_seen_at == START
    world.clock.at += timedelta(seconds=1)
    assert (await world.sessions.find(secret)).last_seen_at == START + timedelta(minutes=1)


async def test_a_new_sign_in_deletes_the_sessions_that_ended_by_time(world: World, ledger: Ledger) -> None:
    old = await world.sessions.begin(member_id=world.member)
    world.clock.at += IDLE
    fresh = await world.sessions.begin(member_id=world.member)
    rows = await ledger._read(lambda c: c.execute(dashboard_sessions.select()).mappings().all())
    assert [row["secret_hash"] for row in rows] == [hash_secret(fresh)]
    assert hash_secret(old) not in {row["secret_hash"] for row in rows}


async def test_setting_or_removing_a_password_or_removing_the_member_ends_its_sessions(world: World) -> None:
    other = await world.directory.create_member(world.account, email="mia@acme.test", name="Mia")
    hers = await world.sessions.begin(member_id=other.id)
    operator = await world.sessions.begin(member_id=None, master_check="c" * 64)

    first = await world.sessions.begin(member_id=world.member)
    await world.passwords.set(world.member, "correct horse battery")
    assert await world.sessions.find(first) is None

    second = await world.sessions.begin(member_id=world.member)
    await world.passwords.remove(world.member)
    assert await world.sessions.find(second) is None

    third = await world.sessions.begin(member_id=world.member)
    await world.directory.remove_member(world.member)
    assert await world.sessions.find(third) is None

    assert await world.sessions.find(hers) is not None
    assert await world.sessions.find(operator) is not None


async def test_a_session_of_an_unknown_member_is_refused(world: World) -> None:
    with pytest.raises(NotFound):
        await world.sessions.begin(member_id="no-such-member")
