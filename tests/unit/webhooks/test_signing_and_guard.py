"""Signatures a Standard Webhooks receiver accepts (checked with the `standardwebhooks` library, an independent
implementation), the address guard, the backoff schedule and alert-rule validation."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import standardwebhooks
from pydantic import ValidationError

from farebox.alerts.config import AlertConfig, ScopeAlerts
from farebox.ledger.outbox import backoff_delays
from farebox.webhooks.guard import UnsafeDestination, check_url, is_public, parse_url
from farebox.webhooks.signing import new_secret, sign, signed_headers


def test_a_signed_message_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    body = '{"type":"usage.threshold","data":{"cap":"50.00"}}'
    headers = signed_headers(secret, msg_id="msg_1", timestamp=int(time.time()), body=body)
    assert standardwebhooks.Webhook(secret).verify(body, headers) == {
        "type": "usage.threshold",
        "data": {"cap": "50.00"},
    }


def test_a_changed_body_id_or_secret_fails_verification() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = signed_headers(secret, msg_id="msg_1", timestamp=now, body='{"a":1}')
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify('{"a":2}', headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify('{"a":1}', headers | {"webhook-id": "msg_2"})
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_secret()).verify('{"a":1}', headers)


def test_signature_matches_the_specification_example() -> None:
    # The example of the Standard Webhooks specification (and of Svix's documentation).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body) == expected


def test_secrets_are_new_each_time_and_prefixed() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and first != second and len(first) > 40


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "http:///nohost", "https://h:99999/"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeDestination):
        parse_url(url)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://169.254.169.254/latest", "http://[::1]/"]
)
async def test_inward_urls_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(UnsafeDestination, match="private, loopback or link-local"):
        await check_url(url, allow_private=False)
    await check_url(url, allow_private=True)


def test_backoff_doubles_up_to_the_maximum() -> None:
    delays = backoff_delays(attempts=6, base_seconds=5, max_seconds=30)
    assert delays == (5_000_000, 10_000_000, 20_000_000, 30_000_000, 30_000_000)


def test_default_alert_rules_are_half_eighty_and_ninety_five_percent_by_webhook() -> None:
    rules = AlertConfig().rules_for("key", "any")
    assert [t.fraction for t in rules.thresholds] == [Decimal("0.5"), Decimal("0.8"), Decimal("0.95")]
    assert all(t.actions == ["webhook"] for t in rules.thresholds)


def test_key_overrides_replace_the_key_rules_for_that_key_only() -> None:
    config = AlertConfig(key_overrides={"k1": ScopeAlerts(enabled=False)})
    assert config.rules_for("key", "k1").enabled is False
    assert config.rules_for("key", "k2").enabled is True


@pytest.mark.parametrize(
    "body",
    [
        {"keys": {"thresholds": [{"fraction": "1.5"}]}},
        {"keys": {"thresholds": [{"fraction": "0"}]}},
        {"keys": {"thresholds": [{"fraction": "0.5"}, {"fraction": "0.50"}]}},
        {"keys": {"thresholds": [{"fraction": "0.5", "actions": ["page_someone"]}]}},
        {"anomalies": {"spike_multiplier": "1"}},
        {"anomalies": {"runaway_days": 3, "runaway_quiet_days": 4}},
        {"email_recipients": ["not-an-address"]},
        {"unknown": True},
    ],
)
def test_bad_alert_rules_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AlertConfig.model_validate(body)
