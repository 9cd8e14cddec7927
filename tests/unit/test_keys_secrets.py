"""core.keys: virtual-key secrets are random, recognisable, stored only as a SHA-256 digest, and read from the
header each SDK sends."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.keys import (
    KEY_PREFIX,
    display_prefix,
    generate_secret,
    hash_secret,
    looks_like_key,
    secret_from_headers,
    secrets_match,
)
from farebox.errors import AuthenticationFailed

_URLSAFE_43 = re.compile(r"^fbx_sk_[A-Za-z0-9_-]{43}$")


def test_a_new_secret_is_the_prefix_and_256_bits_of_url_safe_text() -> None:
    secret = generate_secret()
    assert KEY_PREFIX == "fbx_sk_"
    assert _URLSAFE_43.match(secret), secret
    assert looks_like_key(secret)


def test_secrets_do_not_repeat() -> None:
    assert len({generate_secret() for _ in range(200)}) == 200


@pytest.mark.parametrize(
    ("secret", "digest"),
    [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ],
)
def test_hash_is_hex_sha256_of_the_utf8_secret(secret: str, digest: str) -> None:
    assert hash_secret(secret) == digest


def test_hash_of_a_non_ascii_secret_is_of_its_utf8_bytes() -> None:
    assert hash_secret("fbx_sk_é") == hashlib.sha256("fbx_sk_é".encode()).hexdigest()


@given(st.text())
def test_a_secret_matches_its_own_hash_only(secret: str) -> None:
    stored = hash_secret(secret)
    assert len(stored) == 64 and set(stored) <= set("0123456789abcdef")
    assert secrets_match(secret, stored)
    assert not secrets_match(secret + "x", stored)


def test_a_near_miss_does_not_match() -> None:
    secret = generate_secret()
    stored = hash_secret(secret)
    assert not secrets_match(secret[:-1], stored)
    assert not secrets_match(secret.upper(), stored)
    assert not secrets_match(secret, stored.upper()), "the stored digest is compared as written: lower-case hex"
    assert not secrets_match(secret, "")


@pytest.mark.parametrize(
    ("token", "shaped"),
    [
        (KEY_PREFIX + "a" * 17, True),  # the shortest that passes
        (KEY_PREFIX + "a" * 16, False),
        (KEY_PREFIX, False),
        ("sk-" + "a" * 48, False),  # an OpenAI key
        ("FBX_SK_" + "a" * 43, False),  # the prefix is case-sensitive
        (" " + KEY_PREFIX + "a" * 43, False),
        ("", False),
    ],
)
def test_looks_like_key(token: str, shaped: bool) -> None:
    assert looks_like_key(token) is shaped


def test_display_prefix_shows_the_prefix_and_six_characters_then_an_ellipsis() -> None:
    assert display_prefix("fbx_sk_Ab3dE9zzzzzzzzzzzzzzzzzz") == "fbx_sk_Ab3dE9…"
    secret = generate_secret()
    shown = display_prefix(secret)
    assert shown == secret[:13] + "…"
    assert secret[13:] not in shown


# --- which header holds the key ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query_key", "secret"),
    [
        pytest.param({"authorization": "Bearer k1"}, None, "k1", id="bearer"),
        pytest.param({"authorization": "bearer k1"}, None, "k1", id="scheme-lower-case"),
        pytest.param({"authorization": "BEARER k1"}, None, "k1", id="scheme-upper-case"),
        pytest.param({"authorization": "Bearer   k1  "}, None, "k1", id="blanks-around-token"),
        pytest.param(
            {"authorization": "Bearer k1", "x-api-key": "k2", "x-goog-api-key": "k3"}, "k4", "k1", id="bearer-first"
        ),
        pytest.param({"x-api-key": "k2", "x-goog-api-key": "k3"}, "k4", "k2", id="anthropic-before-gemini"),
        pytest.param({"x-goog-api-key": " k3 "}, "k4", "k3", id="gemini-header-before-query"),
        pytest.param({"authorization": "Bearer    ", "x-api-key": "k2"}, None, "k2", id="blank-bearer-falls-through"),
        pytest.param({"authorization": "Basic dXNlcjpwdw==", "x-api-key": "k2"}, None, "k2", id="basic-ignored"),
        pytest.param({"authorization": "k1", "x-goog-api-key": "k3"}, None, "k3", id="no-scheme-ignored"),
        pytest.param({"x-api-key": "  ", "x-goog-api-key": "k3"}, None, "k3", id="blank-x-api-key-skipped"),
        pytest.param({}, "  k4\t", "k4", id="query-key-stripped"),
        pytest.param({"authorization": "Bearer a b"}, None, "a b", id="token-taken-whole"),
    ],
)
def test_secret_from_headers_precedence(headers: dict[str, str], query_key: str | None, secret: str) -> None:
    assert secret_from_headers(headers, query_key=query_key) == secret


@pytest.mark.parametrize(
    ("headers", "query_key"),
    [
        ({}, None),
        ({}, ""),
        ({}, "   "),
        ({"authorization": "Bearer"}, None),
        ({"authorization": "Bearer  ", "x-api-key": "", "x-goog-api-key": " "}, " "),
        ({"authorization": "Token abc"}, None),
    ],
)
def test_no_key_anywhere_is_a_401_saying_how_to_send_one(headers: dict[str, str], query_key: str | None) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        secret_from_headers(headers, query_key=query_key)
    error = caught.value
    assert (error.status, error.code) == (401, "missing_api_key")
    assert error.message == "missing API key: send 'Authorization: Bearer <key>'"
    assert error.body()["error"]["type"] == "authentication_error"
