"""The proxy's key cache: at most one directory read per key per `ttl`, failures cached too, shared reloads."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from farebox.core.keys import generate_secret, secret_from_headers
from farebox.core.owners import VirtualKey
from farebox.core.periods import Period
from farebox.errors import AuthenticationFailed
from farebox.gateway.wire import split_key_param
from farebox.metering import KeyCache

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_key(**fields: Any) -> VirtualKey:
    values: dict[str, Any] = {
        "id": "key-1",
        "account_id": "acct-1",
        "member_id": None,
        "name": "k",
        "display_prefix": "fbx_sk_abc…",
        "allowed_models": None,
        "agent_id": None,
        "app": None,
        "tags": (),
        "spend_cap_nano": None,
        "cap_period": Period.MONTHLY,
        "expires_at": None,
        "revoked_at": None,
        "disabled_at": None,
        "disabled_reason": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return VirtualKey(**values)


class FakeDirectory:
    """Answers `authenticate` like the directory, counting reads; `delay` slows each read."""

    def __init__(self, key: VirtualKey | None, *, delay: float = 0.0) -> None:
        self.key = key
        self.delay = delay
        self.reads = 0

    async def authenticate(self, secret: str) -> VirtualKey:
        self.reads += 1
        await asyncio.sleep(self.delay)
        if self.key is None:
            raise AuthenticationFailed("invalid API key", code="invalid_api_key")
        if self.key.revoked_at is not None:
            raise AuthenticationFailed("this API key has been revoked", code="key_revoked")
        return self.key


class Clocks:
    def __init__(self) -> None:
        self.monotonic = 100.0
        self.wall = NOW

    def cache(self, directory: FakeDirectory) -> KeyCache:
        return KeyCache(
            directory,  # type: ignore[arg-type]  # a fake with the directory's one method
            ttl=1.0,
            clock=lambda: self.wall,
            monotonic=lambda: self.monotonic,
        )


async def test_a_key_is_read_once_per_ttl_and_a_revocation_is_seen_after_it() -> None:
    clocks, directory = Clocks(), FakeDirectory(make_key())
    cache = clocks.cache(directory)
    secret = generate_secret()
    first = await cache.authenticate(secret)
    assert first == directory.key
    clocks.monotonic += 0.9
    await cache.authenticate(secret)
    assert directory.reads == 1
    directory.key = replace(make_key(), revoked_at=NOW)
    clocks.monotonic += 0.1
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await cache.authenticate(secret)
    assert directory.reads == 2


async def test_failures_are_cached_for_the_ttl_too() -> None:
    clocks, directory = Clocks(), FakeDirectory(None)
    cache = clocks.cache(directory)
    secret = generate_secret()
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await cache.authenticate(secret)
    assert directory.reads == 1
    with pytest.raises(AuthenticationFailed):
        await cache.authenticate("sk-not-a-farebox-key")
    assert directory.reads == 1  # not even looked up


async def test_expiry_is_checked_on_every_request() -> None:
    clocks, directory = Clocks(), FakeDirectory(make_key(expires_at=NOW + timedelta(seconds=5)))
    cache = clocks.cache(directory)
    secret = generate_secret()
    await cache.authenticate(secret)
    clocks.wall = NOW + timedelta(seconds=5)
    with pytest.raises(AuthenticationFailed, match="expired"):
        await cache.authenticate(secret)
    assert directory.reads == 1


async def test_concurrent_requests_share_one_reload_and_clear_forgets_every_entry() -> None:
    clocks, directory = Clocks(), FakeDirectory(make_key(), delay=0.01)
    cache = clocks.cache(directory)
    secret = generate_secret()
    entries = await asyncio.gather(*(cache.authenticate(secret) for _ in range(20)))
    assert directory.reads == 1 and {key for key in entries} == {directory.key}
    await cache.authenticate(secret)
    assert directory.reads == 1
    cache.clear()
    await cache.authenticate(secret)
    assert directory.reads == 2


def test_secret_from_headers() -> None:
    assert secret_from_headers({"authorization": "Bearer abc"}) == "abc"
    assert secret_from_headers({"x-api-key": "def"}) == "def"
    assert secret_from_headers({"x-goog-api-key": "ghi"}, query_key="jkl") == "ghi"
    assert secret_from_headers({}, query_key=" jkl ") == "jkl"
    with pytest.raises(AuthenticationFailed) as missing:
        secret_from_headers({"authorization": "Basic xyz"})
    assert missing.value.code == "missing_api_key"


@pytest.mark.parametrize(
    ("query", "key", "forwarded"),
    [
        (b"alt=sse&key=fbx_sk_a%2Bb", "fbx_sk_a+b", "alt=sse"),
        (b"key=one&alt=sse&x=%20y&key=two", "two", "alt=sse&x=%20y"),  # other parameters keep their bytes
        (b"k%65y=enc&$fields=a", "enc", "$fields=a"),  # an encoded name is still `key`
        (b"alt=sse", None, "alt=sse"),
        (b"", None, ""),
    ],
)
def test_split_key_param_never_forwards_the_key(query: bytes, key: str | None, forwarded: str) -> None:
    assert split_key_param(query) == (key, forwarded)
