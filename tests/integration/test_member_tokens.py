"""Members' API tokens against real ledgers: SQLite, and PostgreSQL with TEST_PG_URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from farebox.core.keys import KEY_PREFIX, TOKEN_PREFIX, hash_secret
from farebox.core.owners import KeyStatus, Role
from farebox.errors import AuthenticationFailed, NotFound, ValidationFailed
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.member_tokens import LAST_USED_GRAIN_SECONDS, MemberTokens
from farebox.ledger.schema import member_tokens

pytestmark = pytest.mark.anyio

START = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)


@dataclass
class Clock:
    at: datetime = START

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def directory(ledger: Ledger, clock: Clock) -> Directory:
    return Directory(ledger, clock=clock)


@pytest.fixture
def tokens(directory: Directory) -> MemberTokens:
    return MemberTokens(directory)


async def _member(directory: Directory, role: Role = Role.ADMIN) -> str:
    account = await directory.create_account(name="Acme")
    return (await directory.create_member(account.id, email="ada@acme.test", name="Ada", role=role)).id


async def test_a_token_is_shown_once_and_kept_only_as_a_hash(
    ledger: Ledger, directory: Directory, tokens: MemberTokens
) -> None:
    member_id = await _member(directory)
    token, secret = await tokens.create(member_id, name=" laptop ")
    assert secret.startswith(TOKEN_PREFIX) and not secret.startswith(KEY_PREFIX) and len(secret) == 50
    assert (token.name, token.member_id, token.display_prefix) == ("laptop", member_id, secret[:13] + "…")
    stored = await ledger._read(lambda c: c.execute(select(member_tokens)).mappings().all())
    assert [row["secret_hash"] for row in stored] == [hash_secret(secret)]
    assert secret not in str([dict(row) for row in stored])
    assert await tokens.list(member_id) == [token]


async def test_authenticate_answers_the_member_with_its_current_role(
    directory: Directory, tokens: MemberTokens
) -> None:
    member_id = await _member(directory, Role.ADMIN)
    _, secret = await tokens.create(member_id, name="laptop")
    assert (await tokens.authenticate(secret))[1].role is Role.ADMIN
    await directory.update_member(member_id, role=Role.BILLING)
    assert (await tokens.authenticate(secret))[1].role is Role.BILLING


async def test_last_used_is_written_at_most_once_a_minute(
    directory: Directory, tokens: MemberTokens, clock: Clock
) -> None:
    token, secret = await tokens.create(await _member(directory), name="laptop")
    assert token.last_used_at is None
    await tokens.authenticate(secret)
    assert (await tokens.get(token.id)).last_used_at == START
    clock.at += timedelta(seconds=LAST_USED_GRAIN_SECONDS - 1)
    await tokens.authenticate(secret)
    assert (await tokens.get(token.id)).last_used_at == START
    clock.at += timedelta(seconds=1)
    await tokens.authenticate(secret)
    assert (await tokens.get(token.id)).last_used_at == clock.at


async def test_revoked_and_expired_tokens_are_refused(directory: Directory, tokens: MemberTokens, clock: Clock) -> None:
    member_id = await _member(directory)
    expiring, expiring_secret = await tokens.create(member_id, name="ci", expires_at=START + timedelta(hours=1))
    revoked, revoked_secret = await tokens.create(member_id, name="old")
    assert (await tokens.revoke(revoked.id)).status(clock.at) is KeyStatus.REVOKED
    assert (await tokens.revoke(revoked.id)).revoked_at == START, "revoking again keeps the first time"
    with pytest.raises(AuthenticationFailed) as refused:
        await tokens.authenticate(revoked_secret)
    assert refused.value.code == "token_revoked"
    await tokens.authenticate(expiring_secret)
    clock.at += timedelta(hours=1)
    with pytest.raises(AuthenticationFailed) as expired:
        await tokens.authenticate(expiring_secret)
    assert expired.value.code == "token_expired"
    assert expiring.status(clock.at) is KeyStatus.EXPIRED


@pytest.mark.parametrize("secret", ["", TOKEN_PREFIX, TOKEN_PREFIX + "x" * 43, KEY_PREFIX + "x" * 43, "fbx_mt"])
async def test_unknown_secrets_are_refused_alike(directory: Directory, tokens: MemberTokens, secret: str) -> None:
    await tokens.create(await _member(directory), name="laptop")
    with pytest.raises(AuthenticationFailed) as refused:
        await tokens.authenticate(secret)
    assert refused.value.code == "invalid_api_key"


async def test_removing_a_member_deletes_its_tokens(directory: Directory, tokens: MemberTokens) -> None:
    member_id = await _member(directory)
    token, secret = await tokens.create(member_id, name="laptop")
    await directory.remove_member(member_id)
    with pytest.raises(AuthenticationFailed):
        await tokens.authenticate(secret)
    with pytest.raises(NotFound):
        await tokens.get(token.id)


async def test_bad_fields_and_unknown_members(directory: Directory, tokens: MemberTokens) -> None:
    member_id = await _member(directory)
    with pytest.raises(ValidationFailed, match="expires_at"):
        await tokens.create(member_id, name="ci", expires_at=START)
    with pytest.raises(ValidationFailed, match="name"):
        await tokens.create(member_id, name="  ")
    with pytest.raises(NotFound, match="member"):
        await tokens.create("no-such-member", name="ci")
    with pytest.raises(NotFound, match="member token"):
        await tokens.revoke("no-such-token")
