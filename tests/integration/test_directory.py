"""The directory (accounts, members, virtual keys) against real ledgers: SQLite, and PostgreSQL with TEST_PG_URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from farebox.core.events import Axis, UsageEvent
from farebox.core.keys import KEY_PREFIX, hash_secret
from farebox.core.money import NANO_PER_USD
from farebox.core.owners import KeyStatus, Plan, Role, percent_used
from farebox.core.periods import Period
from farebox.errors import AuthenticationFailed, Conflict, NotFound, ValidationFailed
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.schema import metadata

pytestmark = pytest.mark.anyio

START = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)


@dataclass
class Clock:
    """A clock the test moves by hand."""

    at: datetime = START

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def directory(ledger: Ledger, clock: Clock) -> Directory:
    return Directory(ledger, clock=clock)


def event(event_id: str, *, account_id: str, at: datetime, cost_usd: str, **fields: str | None) -> UsageEvent:
    return UsageEvent(
        id=event_id,
        timestamp=at,
        account_id=account_id,
        axis=Axis.LLM,
        provider="openai",
        model="gpt-4o",
        canonical_model="gpt-4o",
        operation="chat.completions",
        cost_nano=int(Decimal(cost_usd) * NANO_PER_USD),
        **fields,  # type: ignore[arg-type]
    )


# Accounts


async def test_account_defaults_and_round_trip(directory: Directory) -> None:
    account = await directory.create_account(name="  Acme  ")
    assert (account.name, account.plan, account.timezone) == ("Acme", Plan.FREE, "UTC")
    assert (account.spend_cap_nano, account.cap_period) == (None, Period.MONTHLY)
    assert account.created_at == account.updated_at == START
    assert await directory.get_account(account.id) == account


async def test_list_accounts_oldest_first(directory: Directory, clock: Clock) -> None:
    first = await directory.create_account(name="First")
    clock.advance(1)
    second = await directory.create_account(name="Second", plan="pro", timezone="Europe/Paris")
    assert [a.id for a in await directory.list_accounts()] == [first.id, second.id]
    assert second.plan is Plan.PRO


async def test_update_account_changes_only_given_fields(directory: Directory, clock: Clock) -> None:
    account = await directory.create_account(name="Acme", spend_cap_nano=5 * NANO_PER_USD)
    clock.advance(60)
    updated = await directory.update_account(account.id, plan=Plan.ENTERPRISE, cap_period="weekly")
    assert (updated.name, updated.plan, updated.cap_period) == ("Acme", Plan.ENTERPRISE, Period.WEEKLY)
    assert updated.spend_cap_nano == 5 * NANO_PER_USD
    assert updated.updated_at == START + timedelta(seconds=60)
    assert (await directory.update_account(account.id, spend_cap_nano=None)).spend_cap_nano is None
    assert await directory.update_account(account.id) == await directory.get_account(account.id)


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "A", "timezone": "Mars/Olympus"}, "timezone"),
        ({"name": "A", "timezone": "../etc/passwd"}, "timezone"),
        ({"name": "A", "plan": "gold"}, "plan"),
        ({"name": "A", "cap_period": "hourly"}, "cap_period"),
        ({"name": "A", "spend_cap_nano": -1}, "spend_cap"),
    ],
)
async def test_bad_account_fields_are_refused(directory: Directory, fields: dict[str, object], loc: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await directory.create_account(**fields)  # type: ignore[arg-type]
    assert caught.value.details == [{"loc": loc, "message": caught.value.details[0]["message"]}]  # type: ignore[index]
    assert await directory.list_accounts() == []


async def test_unknown_account(directory: Directory) -> None:
    with pytest.raises(NotFound, match="no account"):
        await directory.get_account("nope")
    with pytest.raises(NotFound):
        await directory.update_account("nope", name="x")
    with pytest.raises(NotFound):
        await directory.list_members("nope")
    with pytest.raises(NotFound):
        await directory.create_member("nope", email="a@b.c", name="A")
    with pytest.raises(NotFound):
        await directory.create_key("nope", name="k")


async def test_update_refuses_unknown_fields(directory: Directory) -> None:
    account = await directory.create_account(name="Acme")
    with pytest.raises(TypeError, match="colour"):
        await directory.update_account(account.id, colour="red")  # type: ignore[call-arg]


async def test_timezone_change_reaches_the_spend_counters(directory: Directory, ledger: Ledger) -> None:
    account = await directory.create_account(name="Acme", cap_period="daily")
    # Recorded while the account is on UTC: the recorder caches that timezone.
    await ledger.record(event("e1", account_id=account.id, at=START - timedelta(hours=10), cost_usd="1"))
    account = await directory.update_account(account.id, timezone="Asia/Tokyo")
    # 20:00 UTC is 05:00 the next day in Tokyo: a new Tokyo day started at 15:00 UTC.
    await ledger.record(event("e2", account_id=account.id, at=START, cost_usd="2"))
    assert await directory.spend(account) == 2 * NANO_PER_USD


# Members


async def test_members(directory: Directory, clock: Clock) -> None:
    account = await directory.create_account(name="Acme")
    ada = await directory.create_member(account.id, email=" Ada@Acme.TEST ", name="Ada", role="owner")
    clock.advance(1)
    bob = await directory.create_member(account.id, email="bob@acme.test", name="Bob")
    assert (ada.email, ada.role, ada.is_admin) == ("ada@acme.test", Role.OWNER, True)
    assert (bob.role, bob.is_admin) == (Role.MEMBER, False)
    assert await directory.get_member(ada.id) == ada
    assert [m.id for m in await directory.list_members(account.id)] == [ada.id, bob.id]
    bob = await directory.update_member(bob.id, role=Role.ADMIN, spend_cap_nano=NANO_PER_USD, cap_period="total")
    assert (bob.role, bob.spend_cap_nano, bob.cap_period) == (Role.ADMIN, NANO_PER_USD, Period.TOTAL)


async def test_member_email_unique_per_account(directory: Directory) -> None:
    acme = await directory.create_account(name="Acme")
    globex = await directory.create_account(name="Globex")
    await directory.create_member(acme.id, email="ada@acme.test", name="Ada")
    bob = await directory.create_member(acme.id, email="bob@acme.test", name="Bob")
    with pytest.raises(Conflict, match="already has a member") as caught:
        await directory.create_member(acme.id, email="ADA@acme.test", name="Ada again")
    assert caught.value.status == 409
    with pytest.raises(Conflict):
        await directory.update_member(bob.id, email="ada@acme.test")
    await directory.create_member(globex.id, email="ada@acme.test", name="Ada at Globex")
    assert (await directory.update_member(bob.id, email="BOB@acme.test")).email == "bob@acme.test"
    assert len(await directory.list_members(acme.id)) == 2


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"email": "not-an-email", "name": "A"}, "email"),
        ({"email": "a b@c.d", "name": "A"}, "email"),
        ({"email": "a@b.c", "name": ""}, "name"),
        ({"email": "a@b.c", "name": "A", "role": "root"}, "role"),
    ],
)
async def test_bad_member_fields(directory: Directory, fields: dict[str, str], loc: str) -> None:
    account = await directory.create_account(name="Acme")
    with pytest.raises(ValidationFailed) as caught:
        await directory.create_member(account.id, **fields)  # type: ignore[arg-type]
    assert caught.value.details is not None and caught.value.details[0]["loc"] == loc


async def test_remove_member_revokes_and_detaches_its_keys(directory: Directory) -> None:
    account = await directory.create_account(name="Acme")
    ada = await directory.create_member(account.id, email="ada@acme.test", name="Ada")
    key, secret = await directory.create_key(account.id, member_id=ada.id, name="ada's")
    removed = await directory.remove_member(ada.id)
    assert removed.id == ada.id
    with pytest.raises(NotFound):
        await directory.get_member(ada.id)
    with pytest.raises(NotFound):
        await directory.remove_member(ada.id)
    kept = await directory.get_key(key.id)
    assert (kept.member_id, kept.status(START)) == (None, KeyStatus.REVOKED)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await directory.authenticate(secret)


# Virtual keys


async def test_create_key_returns_the_secret_once_and_stores_only_its_hash(
    directory: Directory, ledger: Ledger, ledger_url: str
) -> None:
    account = await directory.create_account(name="Acme")
    ada = await directory.create_member(account.id, email="ada@acme.test", name="Ada")
    key, secret = await directory.create_key(
        account.id,
        member_id=ada.id,
        name="agents",
        allowed_models=["gpt-4o", " gpt-4o ", "claude"],
        agent_id="bot",
        app=" ",
        tags=["prod", "eu", "prod"],
        spend_cap_nano=50 * NANO_PER_USD,
        cap_period=Period.DAILY,
        expires_at=START + timedelta(days=30),
    )
    assert secret.startswith(KEY_PREFIX) and len(secret) > 40
    assert secret.startswith(key.display_prefix.rstrip("…")) and key.display_prefix != secret
    assert key.allowed_models == ("gpt-4o", "claude") and key.tags == ("prod", "eu")
    assert (key.member_id, key.agent_id, key.app) == (ada.id, "bot", None)
    assert key.expires_at == START + timedelta(days=30) and key.status(START) is KeyStatus.ACTIVE
    assert await directory.get_key(key.id) == key
    assert await directory.authenticate(secret) == key

    def dump(connection: Connection) -> str:
        return repr([connection.execute(select(table)).all() for table in metadata.sorted_tables])

    stored = await ledger._read(dump)
    assert key.id in stored and hash_secret(secret) in stored and secret not in stored
    if ledger.dialect == "sqlite":
        database = Path(ledger_url.removeprefix("sqlite:///"))
        files = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
        assert key.id.encode() in files and secret.encode() not in files


async def test_key_defaults(directory: Directory) -> None:
    account = await directory.create_account(name="Acme")
    key, _ = await directory.create_key(account.id, name="plain")
    assert key.member_id is None and key.allowed_models is None and key.tags == ()
    assert (key.spend_cap_nano, key.cap_period, key.expires_at, key.revoked_at) == (None, Period.MONTHLY, None, None)
    assert key.allows_model("anything")


async def test_create_key_refusals(directory: Directory) -> None:
    acme = await directory.create_account(name="Acme")
    globex = await directory.create_account(name="Globex")
    outsider = await directory.create_member(globex.id, email="g@globex.test", name="G")
    with pytest.raises(ValidationFailed, match="member_id"):
        await directory.create_key(acme.id, member_id=outsider.id, name="k")
    with pytest.raises(ValidationFailed, match="member_id"):
        await directory.create_key(acme.id, member_id="ghost", name="k")
    with pytest.raises(ValidationFailed, match="in the past"):
        await directory.create_key(acme.id, name="k", expires_at=START - timedelta(seconds=1))
    with pytest.raises(ValidationFailed, match="allowed_models"):
        await directory.create_key(acme.id, name="k", allowed_models=[])
    with pytest.raises(ValidationFailed, match="tags"):
        await directory.create_key(acme.id, name="k", tags=[""])
    assert await directory.list_keys() == []


async def test_list_keys_filters(directory: Directory) -> None:
    acme = await directory.create_account(name="Acme")
    globex = await directory.create_account(name="Globex")
    ada = await directory.create_member(acme.id, email="ada@acme.test", name="Ada")
    k1, _ = await directory.create_key(acme.id, member_id=ada.id, name="1")
    k2, _ = await directory.create_key(acme.id, name="2")
    k3, _ = await directory.create_key(globex.id, name="3")
    assert {k.id for k in await directory.list_keys()} == {k1.id, k2.id, k3.id}
    assert {k.id for k in await directory.list_keys(account_id=acme.id)} == {k1.id, k2.id}
    assert [k.id for k in await directory.list_keys(member_id=ada.id)] == [k1.id]
    assert await directory.list_keys(account_id=globex.id, member_id=ada.id) == []


async def test_update_key(directory: Directory, clock: Clock) -> None:
    account = await directory.create_account(name="Acme")
    key, secret = await directory.create_key(account.id, name="k", allowed_models=["a"], agent_id="bot", tags=["t"])
    clock.advance(5)
    key = await directory.update_key(key.id, name="renamed", allowed_models=None, agent_id="", tags=["x", "y"])
    assert (key.name, key.allowed_models, key.agent_id, key.tags) == ("renamed", None, None, ("x", "y"))
    assert key.updated_at == START + timedelta(seconds=5)
    key = await directory.update_key(key.id, spend_cap_nano=7, cap_period="weekly", app="helpdesk")
    assert (key.spend_cap_nano, key.cap_period, key.app, key.name) == (7, Period.WEEKLY, "helpdesk", "renamed")
    with pytest.raises(ValidationFailed):
        await directory.update_key(key.id, allowed_models=[])
    with pytest.raises(NotFound, match="no virtual key"):
        await directory.update_key("ghost", name="x")
    # An expiry in the past expires the key at once.
    key = await directory.update_key(key.id, expires_at=clock.at)
    assert key.status(clock.at) is KeyStatus.EXPIRED
    with pytest.raises(AuthenticationFailed, match="expired") as caught:
        await directory.authenticate(secret)
    assert caught.value.code == "key_expired"
    key = await directory.update_key(key.id, expires_at=None)
    assert await directory.authenticate(secret) == key


async def test_key_expires_on_time(directory: Directory, clock: Clock) -> None:
    account = await directory.create_account(name="Acme")
    key, secret = await directory.create_key(account.id, name="k", expires_at=START + timedelta(hours=1))
    clock.advance(3599)
    assert (await directory.authenticate(secret)).id == key.id
    clock.advance(1)
    with pytest.raises(AuthenticationFailed, match="expired"):
        await directory.authenticate(secret)


@pytest.mark.parametrize("token", ["", "nonsense", KEY_PREFIX + "x" * 43, "Bearer " + KEY_PREFIX + "y" * 43])
async def test_authenticate_unknown_secret(directory: Directory, token: str) -> None:
    with pytest.raises(AuthenticationFailed, match="invalid") as caught:
        await directory.authenticate(token)
    assert (caught.value.status, caught.value.message) == (401, "invalid API key")


async def test_revoke(directory: Directory, clock: Clock) -> None:
    account = await directory.create_account(name="Acme")
    key, secret = await directory.create_key(account.id, name="k")
    revoked = await directory.revoke_key(key.id)
    assert revoked.revoked_at == START and revoked.status(START) is KeyStatus.REVOKED
    with pytest.raises(AuthenticationFailed, match="revoked") as caught:
        await directory.authenticate(secret)
    assert caught.value.code == "key_revoked"
    clock.advance(10)
    assert (await directory.revoke_key(key.id)).revoked_at == START
    with pytest.raises(Conflict, match="revoked"):
        await directory.rotate_key(key.id)
    with pytest.raises(NotFound):
        await directory.revoke_key("ghost")


async def test_rotate_with_grace(directory: Directory, clock: Clock) -> None:
    account = await directory.create_account(name="Acme")
    key, old = await directory.create_key(account.id, name="k")
    rotated, new = await directory.rotate_key(key.id, grace_seconds=60)
    assert new != old and rotated.display_prefix == new[: len(rotated.display_prefix) - 1] + "…"
    assert rotated.id == key.id and rotated.display_prefix != key.display_prefix
    clock.advance(59)
    assert (await directory.authenticate(old)).id == key.id
    assert (await directory.authenticate(new)).id == key.id
    clock.advance(1)
    with pytest.raises(AuthenticationFailed, match="rotated.*expired"):
        await directory.authenticate(old)
    assert (await directory.authenticate(new)).id == key.id


async def test_rotate_without_grace_stops_the_old_secret_at_once(directory: Directory) -> None:
    account = await directory.create_account(name="Acme")
    key, old = await directory.create_key(account.id, name="k")
    _, new = await directory.rotate_key(key.id)
    with pytest.raises(AuthenticationFailed, match="expired"):
        await directory.authenticate(old)
    assert (await directory.authenticate(new)).id == key.id


async def test_rotating_again_never_extends_an_old_secret(directory: Directory, clock: Clock) -> None:
    account = await directory.create_account(name="Acme")
    key, first = await directory.create_key(account.id, name="k")
    _, second = await directory.rotate_key(key.id, grace_seconds=10)
    clock.advance(5)
    _, third = await directory.rotate_key(key.id, grace_seconds=3600)
    clock.advance(5)
    with pytest.raises(AuthenticationFailed):
        await directory.authenticate(first)
    assert (await directory.authenticate(second)).id == key.id
    assert (await directory.authenticate(third)).id == key.id
    clock.advance(3600)
    with pytest.raises(AuthenticationFailed):
        await directory.authenticate(second)
    assert (await directory.authenticate(third)).id == key.id


@pytest.mark.parametrize("grace", [-1, 365 * 86_400 + 1])
async def test_rotate_refuses_bad_grace(directory: Directory, grace: int) -> None:
    account = await directory.create_account(name="Acme")
    key, secret = await directory.create_key(account.id, name="k")
    with pytest.raises(ValidationFailed, match="grace"):
        await directory.rotate_key(key.id, grace_seconds=grace)
    assert (await directory.authenticate(secret)).id == key.id
    with pytest.raises(NotFound):
        await directory.rotate_key("ghost")


# Spend


async def test_spend_in_the_current_cap_period(directory: Directory, ledger: Ledger, clock: Clock) -> None:
    account = await directory.create_account(name="Acme", timezone="America/New_York", cap_period="daily")
    ada = await directory.create_member(account.id, email="ada@acme.test", name="Ada", cap_period="total")
    key, _ = await directory.create_key(account.id, member_id=ada.id, name="k", cap_period="weekly")
    other, _ = await directory.create_key(account.id, name="other", cap_period="daily")
    owner = {"key_id": key.id, "member_id": ada.id}
    # 20:00 UTC on Sunday June 1 is 16:00 in New York: its day started at 04:00 UTC, its week on May 26.
    await ledger.record(event("a", account_id=account.id, at=START - timedelta(hours=2), cost_usd="1.5", **owner))
    await ledger.record(event("b", account_id=account.id, at=START - timedelta(hours=17), cost_usd="2", **owner))
    await ledger.record(event("c", account_id=account.id, at=START - timedelta(days=40), cost_usd="4", **owner))
    assert await directory.spend(account) == 1_500_000_000
    assert await directory.spend(key) == 3_500_000_000
    assert await directory.spend(ada) == 7_500_000_000
    assert await directory.spend(other) == 0
    assert await directory.spends([key, other, account, ada]) == [3_500_000_000, 0, 1_500_000_000, 7_500_000_000]
    assert await directory.spends([]) == []
    clock.advance(86_400)
    assert await directory.spend(key) == 0


async def test_a_timezone_change_recounts_the_current_periods_within_the_new_bounds(
    directory: Directory, ledger: Ledger
) -> None:
    # START is Sunday 1 June 20:00 UTC. In UTC the month began at 1 June 00:00; in Tokyo (UTC+9) it began on
    # 31 May 15:00 UTC and the day at 1 June 15:00 UTC.
    account = await directory.create_account(name="Acme", cap_period="monthly")
    key, _ = await directory.create_key(account.id, name="k", cap_period="daily")
    owner = {"key_id": key.id, "member_id": None}
    await ledger.record(event("may", account_id=account.id, at=START - timedelta(hours=28), cost_usd="4", **owner))
    await ledger.record(event("night", account_id=account.id, at=START - timedelta(hours=10), cost_usd="2", **owner))
    await ledger.record(event("now", account_id=account.id, at=START - timedelta(hours=1), cost_usd="1", **owner))
    assert (await directory.spend(account), await directory.spend(key)) == (3 * NANO_PER_USD, 3 * NANO_PER_USD)

    tokyo = await directory.update_account(account.id, timezone="Asia/Tokyo")
    # The month now also holds 31 May 16:00 UTC; the day holds only 19:00 UTC.
    assert await directory.spend(tokyo) == 7 * NANO_PER_USD
    assert await directory.spend(key) == 1 * NANO_PER_USD
    await ledger.record(event("later", account_id=account.id, at=START, cost_usd="0.5", **owner))
    assert await directory.spend(tokyo) == 7_500_000_000, "events after the change count into the new bounds"

    back = await directory.update_account(account.id, timezone="UTC")
    assert (await directory.spend(back), await directory.spend(key)) == (3_500_000_000, 3_500_000_000)


def test_percent_used() -> None:
    assert percent_used(0, None) is None
    assert percent_used(25, 100) == Decimal("25.00")
    assert percent_used(1, 3) == Decimal("33.33")
    assert percent_used(2, 3) == Decimal("66.67")
    assert percent_used(150, 100) == Decimal("150.00")
    assert percent_used(0, 0) == Decimal("100.00")
