"""webhooks.signing against an independent verifier (the `standardwebhooks` package): timestamp tolerance,
signatures over exact bytes, key rotation lists. webhooks.guard: which addresses and URLs are refused, with
name resolution answered by a fake resolver (no network)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
import time
from collections.abc import Sequence
from typing import Any

import pytest
import standardwebhooks

from farebox.webhooks.guard import UnsafeDestination, check_url, is_public, parse_url
from farebox.webhooks.signing import SECRET_PREFIX, new_secret, sign, signed_headers

BODY = '{"type":"usage.threshold","data":{"cap":"50.00","spent":"40.000000001"}}'


def verify(secret: str, body: str, headers: dict[str, str]) -> Any:
    return standardwebhooks.Webhook(secret).verify(body, headers)


# --- signing ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("age_seconds", [-240, -1, 0, 1, 240])
def test_a_timestamp_within_five_minutes_verifies(age_seconds: int) -> None:
    secret = new_secret()
    headers = signed_headers(secret, msg_id="msg_1", timestamp=int(time.time()) - age_seconds, body=BODY)
    assert verify(secret, BODY, headers)["data"]["spent"] == "40.000000001"


@pytest.mark.parametrize(("age_seconds", "reason"), [(360, "too old"), (-360, "too new"), (86_400, "too old")])
def test_a_timestamp_outside_five_minutes_is_refused_as_a_replay(age_seconds: int, reason: str) -> None:
    secret = new_secret()
    headers = signed_headers(secret, msg_id="msg_1", timestamp=int(time.time()) - age_seconds, body=BODY)
    with pytest.raises(standardwebhooks.WebhookVerificationError, match=reason):
        verify(secret, BODY, headers)


def test_a_changed_timestamp_breaks_the_signature() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = signed_headers(secret, msg_id="msg_1", timestamp=now, body=BODY)
    with pytest.raises(standardwebhooks.WebhookVerificationError, match="No matching signature"):
        verify(secret, BODY, headers | {"webhook-timestamp": str(now - 1)})


def test_headers_carry_id_timestamp_signature_and_json_type() -> None:
    secret = new_secret()
    headers = signed_headers(secret, msg_id="msg_abc", timestamp=1_700_000_000, body=BODY)
    assert headers == {
        "webhook-id": "msg_abc",
        "webhook-timestamp": "1700000000",
        "webhook-signature": sign(secret, msg_id="msg_abc", timestamp=1_700_000_000, body=BODY),
        "content-type": "application/json",
    }


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body_under_the_secrets_bytes() -> None:
    key = bytes(range(32))
    secret = SECRET_PREFIX + base64.b64encode(key).decode()
    expected = hmac.new(key, b"msg_1.1700000000." + BODY.encode(), hashlib.sha256).digest()
    assert (
        sign(secret, msg_id="msg_1", timestamp=1_700_000_000, body=BODY) == "v1," + base64.b64encode(expected).decode()
    )


def test_the_secret_prefix_is_optional_when_signing() -> None:
    secret = new_secret()
    bare = secret.removeprefix(SECRET_PREFIX)
    assert sign(bare, msg_id="m", timestamp=1, body="{}") == sign(secret, msg_id="m", timestamp=1, body="{}")


def test_non_ascii_bodies_are_signed_as_utf8_and_verify() -> None:
    secret = new_secret()
    body = '{"name":"Zoë’s team — 日本"}'
    headers = signed_headers(secret, msg_id="msg_ü", timestamp=int(time.time()), body=body)
    assert verify(secret, body, headers) == {"name": "Zoë’s team — 日本"}


def test_a_receiver_holding_old_and_new_signatures_accepts_either() -> None:
    """`webhook-signature` may list several entries (key rotation): one match is enough."""
    old, new = new_secret(), new_secret()
    now = int(time.time())
    both = " ".join(sign(s, msg_id="m", timestamp=now, body=BODY) for s in (old, new))
    headers = signed_headers(new, msg_id="m", timestamp=now, body=BODY) | {"webhook-signature": both}
    assert verify(old, BODY, headers) == verify(new, BODY, headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verify(new_secret(), BODY, headers)


def test_a_new_secret_is_32_random_bytes_in_base64() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_a_signature_is_deterministic_and_differs_by_each_input() -> None:
    secret = new_secret()
    base = sign(secret, msg_id="m", timestamp=1, body="{}")
    assert base == sign(secret, msg_id="m", timestamp=1, body="{}")
    others = {
        sign(secret, msg_id="n", timestamp=1, body="{}"),
        sign(secret, msg_id="m", timestamp=2, body="{}"),
        sign(secret, msg_id="m", timestamp=1, body="{ }"),
        sign(new_secret(), msg_id="m", timestamp=1, body="{}"),
    }
    assert base not in others and len(others) == 4


# --- addresses --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("1.1.1.1", True),
        ("::ffff:8.8.8.8", True),  # mapped public IPv4 stays public
        ("::ffff:10.0.0.1", False),  # mapped private
        ("::ffff:169.254.169.254", False),  # mapped link-local (cloud metadata)
        ("::ffff:0:0", False),
        ("::ffff:224.0.0.1", False),  # mapped IPv4 multicast: not multicast as IPv6, caught once unmapped
        ("::ffff:239.255.255.250", False),
        ("127.255.255.254", False),
        ("192.0.2.1", False),  # documentation
        ("198.18.0.1", False),  # benchmarking
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("239.255.255.250", False),  # multicast (SSDP)
        ("ff02::1", False),  # IPv6 multicast
        ("fe80::1%eth0", False),  # scoped link-local
        ("fd12:3456::1", False),  # unique local
        ("2001:db8::1", False),  # documentation
        ("::", False),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_a_non_address_is_an_error_not_a_public_address() -> None:
    with pytest.raises(ValueError):
        is_public("example.com")


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://hooks.example.com/x", "hooks.example.com", 443),
        ("http://hooks.example.com/x", "hooks.example.com", 80),
        ("https://hooks.example.com:8443/x?a=1", "hooks.example.com", 8443),
        ("HTTPS://Hooks.Example.COM/", "hooks.example.com", 443),
        ("https://user:pw@hooks.example.com/", "hooks.example.com", 443),
        ("https://[2606:4700::1111]:444/", "2606:4700::1111", 444),
    ],
)
def test_parse_url_gives_host_and_port(url: str, host: str, port: int) -> None:
    assert parse_url(url) == (host, port)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "must be an http:// or https:// URL with a host"),
        ("gopher://example.com/", "must be an http:// or https:// URL with a host"),
        ("//example.com/x", "must be an http:// or https:// URL with a host"),
        ("", "must be an http:// or https:// URL with a host"),
        ("https://example.com:notaport/", "has an invalid port"),
        ("https://example.com:70000/", "has an invalid port"),
    ],
)
def test_parse_url_refusals(url: str, message: str) -> None:
    with pytest.raises(UnsafeDestination, match=f"^{message}$"):
        parse_url(url)


# --- URLs, with names resolved by a fake resolver ---------------------------------------------------------------


class FakeDNSLoop(asyncio.SelectorEventLoop):
    """An event loop whose name resolution answers from a table (a missing name does not resolve)."""

    answers: dict[str, Sequence[str]] = {}

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [(family[":" in address], socket.SOCK_STREAM, 6, "", (address, port)) for address in self.answers[host]]


def run_check(url: str, answers: dict[str, Sequence[str]], *, allow_private: bool = False) -> None:
    FakeDNSLoop.answers = answers
    with asyncio.Runner(loop_factory=FakeDNSLoop) as runner:
        runner.run(check_url(url, allow_private=allow_private))


def test_a_name_resolving_only_to_public_addresses_is_allowed() -> None:
    run_check("https://hooks.example.com/x", {"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})


@pytest.mark.parametrize(
    "addresses",
    [["10.0.0.5"], ["93.184.216.34", "169.254.169.254"], ["2606:2800:220:1::1", "::1"], ["::ffff:192.168.0.1"]],
)
def test_a_name_with_any_inward_address_is_refused_naming_it(addresses: list[str]) -> None:
    """One inward address is enough: the HTTP client might pick it."""
    with pytest.raises(UnsafeDestination) as caught:
        run_check("https://rebind.example.com/", {"rebind.example.com": addresses})
    inward = next(address for address in addresses if not is_public(address))
    assert str(caught.value) == (
        f"host 'rebind.example.com' resolves to {inward}, a private, loopback or link-local address "
        "(set FAREBOX_ALLOW_PRIVATE_WEBHOOK_URLS=true, for development only, to allow it)"
    )


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(UnsafeDestination, match="^host 'nowhere.example' does not resolve$"):
        run_check("https://nowhere.example/hook", {})


def test_allow_private_skips_resolution_but_not_the_url_shape() -> None:
    run_check("http://internal.corp:8080/hook", {}, allow_private=True)  # not even looked up
    with pytest.raises(UnsafeDestination, match="http:// or https://"):
        run_check("ftp://internal.corp/", {}, allow_private=True)


def test_the_port_of_the_url_is_the_one_resolved() -> None:
    seen: list[Any] = []

    class Recording(FakeDNSLoop):
        async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append((host, port))
            return await super().getaddrinfo(host, port, *args, **kwargs)

    FakeDNSLoop.answers = {"h.example.com": ["93.184.216.34"]}
    with asyncio.Runner(loop_factory=Recording) as runner:
        runner.run(check_url("https://h.example.com:8443/x", allow_private=False))
        runner.run(check_url("http://h.example.com/x", allow_private=False))
    assert seen == [("h.example.com", 8443), ("h.example.com", 80)]
