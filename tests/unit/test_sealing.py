"""Sealing secrets at rest: keys derived per purpose from the server secret (HKDF), AES-GCM bound to a context."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from farebox.core.sealing import SecretBox, UnreadableSecret, WrongServerSecret
from farebox.core.server_secret import WEBHOOK_SECRETS, derive_key, generate_server_secret
from farebox.webhooks.signing import new_secret

SERVER_SECRET = "unit-tests-server-secret-0123456789abcdef"


def test_derive_key_is_rfc_5869_hkdf_sha256() -> None:
    # RFC 5869, test case 3 (SHA-256, no salt, no info): anyone can rederive farebox's keys with any HKDF.
    okm = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    assert derive_key("\x0b" * 22, purpose=b"", length=42).hex() == okm


@pytest.mark.parametrize("length", [1, 31, 32, 33, 64, 100, 255 * 32])
@pytest.mark.parametrize("purpose", [WEBHOOK_SECRETS, b""])
def test_derive_key_agrees_with_the_hkdf_of_the_cryptography_package(length: int, purpose: bytes) -> None:
    hkdf = HKDF(algorithm=SHA256(), length=length, salt=None, info=purpose)
    assert derive_key(SERVER_SECRET, purpose=purpose, length=length) == hkdf.derive(SERVER_SECRET.encode())


@pytest.mark.parametrize("length", [0, 255 * 32 + 1])
def test_a_key_length_hkdf_cannot_make_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="1 to 8160 bytes"):
        derive_key(SERVER_SECRET, purpose=WEBHOOK_SECRETS, length=length)


def test_each_purpose_and_each_server_secret_has_its_own_key() -> None:
    webhooks = derive_key(SERVER_SECRET, purpose=WEBHOOK_SECRETS)
    assert len(webhooks) == 32
    assert webhooks != derive_key(SERVER_SECRET, purpose=b"farebox dashboard cookies v1")
    assert webhooks != derive_key(SERVER_SECRET + "x", purpose=WEBHOOK_SECRETS)
    assert webhooks == derive_key(SERVER_SECRET, purpose=WEBHOOK_SECRETS)
    assert SERVER_SECRET.encode() not in webhooks


def test_a_generated_server_secret_is_43_url_safe_characters() -> None:
    first, second = generate_server_secret(), generate_server_secret()
    assert len(first) == 43 and first != second
    assert len(base64.urlsafe_b64decode(first + "=")) == 32


def test_a_sealed_secret_opens_in_its_context_only() -> None:
    box = SecretBox.derived(SERVER_SECRET, purpose=WEBHOOK_SECRETS)
    secret = new_secret()
    sealed = box.seal(secret, context="endpoint-1")

    assert SecretBox.is_sealed(sealed) and not SecretBox.is_sealed(secret)
    assert secret not in sealed and secret.removeprefix("whsec_") not in sealed
    assert box.open(sealed, context="endpoint-1") == secret
    assert box.seal(secret, context="endpoint-1") != sealed, "a fresh nonce for every value"
    with pytest.raises(UnreadableSecret, match="copied from another row"):
        box.open(sealed, context="endpoint-2")


def test_the_stored_format_is_the_documented_one() -> None:
    # sealed:v1:<key id>:<base64url of nonce (12 bytes), ciphertext and tag>, the header and context as
    # associated data, AES-256-GCM under the HKDF key of `farebox webhook secrets v1`.
    box = SecretBox.derived(SERVER_SECRET, purpose=WEBHOOK_SECRETS)
    sealed = box.seal("whsec_abc", context="endpoint-1")
    prefix, version, key_id, body = sealed.split(":")
    assert (prefix, version, key_id) == ("sealed", "v1", box.key_id)
    assert len(key_id) == 8 and int(key_id, 16) >= 0
    raw = base64.urlsafe_b64decode(body)
    aead = AESGCM(derive_key(SERVER_SECRET, purpose=WEBHOOK_SECRETS))
    assert aead.decrypt(raw[:12], raw[12:], f"sealed:v1:{key_id}:endpoint-1".encode()) == b"whsec_abc"


def test_a_box_loads_its_cipher_at_its_first_seal_or_open_only() -> None:
    box = SecretBox.derived(SERVER_SECRET, purpose=WEBHOOK_SECRETS)
    assert len(box.key_id) == 8 and not box.loaded, "deriving and naming the key need no cipher"
    sealed = box.seal("whsec_abc", context="e")
    assert box.loaded
    opener = SecretBox.derived(SERVER_SECRET, purpose=WEBHOOK_SECRETS)
    assert opener.open(sealed, context="e") == "whsec_abc" and opener.loaded


def test_another_server_secret_is_named_as_such() -> None:
    sealed = SecretBox.derived(SERVER_SECRET, purpose=WEBHOOK_SECRETS).seal("whsec_abc", context="e")
    other = SecretBox.derived("another-server-secret-0123456789abcdef", purpose=WEBHOOK_SECRETS)
    with pytest.raises(WrongServerSecret, match="sealed under another server secret") as refused:
        other.open(sealed, context="e")
    assert refused.value.key_id == SecretBox.key_id_of(sealed) != other.key_id
    assert other.key_id in str(refused.value)


@pytest.mark.parametrize(
    "damage",
    [
        lambda sealed: sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"),  # ciphertext or tag
        lambda sealed: sealed.rsplit(":", 1)[0] + ":not base64!",
        lambda sealed: sealed.rsplit(":", 1)[0] + ":" + base64.urlsafe_b64encode(b"short").decode(),
    ],
)
def test_an_altered_value_does_not_open(damage: Callable[[str], str]) -> None:
    box = SecretBox.derived(SERVER_SECRET, purpose=WEBHOOK_SECRETS)
    sealed = box.seal("whsec_abc", context="e")
    with pytest.raises(UnreadableSecret):
        box.open(damage(sealed), context="e")


@pytest.mark.parametrize("value", ["whsec_abc", "sealed:v2:0123abcd:AAAA", "sealed:v1:AAAA", "sealed:"])
def test_a_value_of_an_unknown_format_is_refused(value: str) -> None:
    box = SecretBox.derived(SERVER_SECRET, purpose=WEBHOOK_SECRETS)
    with pytest.raises(UnreadableSecret, match="format"):
        box.open(value, context="e")


def test_a_box_needs_a_256_bit_key_and_never_shows_it() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SecretBox(b"short")
    key = derive_key(SERVER_SECRET, purpose=WEBHOOK_SECRETS)
    box = SecretBox(key)
    assert repr(box) == f"SecretBox(key_id={box.key_id!r})"
    assert key.hex() not in repr(box)
