"""core.owners: what a key's status is at an instant, which models it may call, who is an admin, and how a
record's fields are checked as a whole (`clean_fields` with the account, member and key rule tables)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.owners import (
    ACCOUNT_DEFAULTS,
    ACCOUNT_RULES,
    KEY_DEFAULTS,
    KEY_RULES,
    MEMBER_DEFAULTS,
    MEMBER_RULES,
    KeyStatus,
    Member,
    Plan,
    Role,
    Rule,
    VirtualKey,
    clean_fields,
)
from farebox.core.periods import Period
from farebox.errors import ValidationFailed

T0 = datetime(2025, 6, 1, 12, tzinfo=UTC)


def make_key(**changes: Any) -> VirtualKey:
    fields: dict[str, Any] = {
        "id": "key_1",
        "account_id": "acct_1",
        "member_id": None,
        "name": "ci",
        "display_prefix": "fbx_sk_Ab3dE9…",
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
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(changes)
    return VirtualKey(**fields)


def make_member(role: Role) -> Member:
    return Member("mem_1", "acct_1", "ada@example.com", "Ada", role, None, Period.MONTHLY, T0, T0)


# --- key status -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revoked", "disabled", "expires", "now", "status"),
    [
        pytest.param(None, None, None, T0, KeyStatus.ACTIVE, id="plain"),
        pytest.param(None, None, T0 + timedelta(seconds=1), T0, KeyStatus.ACTIVE, id="before-expiry"),
        pytest.param(None, None, T0, T0, KeyStatus.EXPIRED, id="at-expiry"),
        pytest.param(None, None, T0 - timedelta(microseconds=1), T0, KeyStatus.EXPIRED, id="after-expiry"),
        pytest.param(None, T0, None, T0, KeyStatus.DISABLED, id="disabled"),
        pytest.param(None, T0, T0 - timedelta(days=1), T0, KeyStatus.DISABLED, id="disabled-beats-expired"),
        pytest.param(T0, None, None, T0, KeyStatus.REVOKED, id="revoked"),
        pytest.param(T0, T0, T0 - timedelta(days=1), T0, KeyStatus.REVOKED, id="revoked-beats-everything"),
        pytest.param(T0 + timedelta(days=9), None, None, T0, KeyStatus.REVOKED, id="revoked-whenever-recorded"),
    ],
)
def test_key_status(
    revoked: datetime | None, disabled: datetime | None, expires: datetime | None, now: datetime, status: KeyStatus
) -> None:
    key = make_key(revoked_at=revoked, disabled_at=disabled, expires_at=expires)
    assert key.status(now) is status


def test_expiry_compares_instants_not_wall_clocks() -> None:
    expires = datetime(2025, 6, 1, 18, tzinfo=timezone(timedelta(hours=5, minutes=30)))  # 12:30 UTC
    key = make_key(expires_at=expires)
    assert key.status(datetime(2025, 6, 1, 12, 29, tzinfo=UTC)) is KeyStatus.ACTIVE
    assert key.status(datetime(2025, 6, 1, 12, 30, tzinfo=UTC)) is KeyStatus.EXPIRED


@given(expires=st.datetimes(timezones=st.just(UTC)), now=st.datetimes(timezones=st.just(UTC)))
def test_a_key_with_only_an_expiry_is_active_exactly_before_it(expires: datetime, now: datetime) -> None:
    status = make_key(expires_at=expires).status(now)
    assert status is (KeyStatus.ACTIVE if now < expires else KeyStatus.EXPIRED)


def test_key_status_values() -> None:
    assert [s.value for s in KeyStatus] == ["active", "revoked", "disabled", "expired"]


# --- allowed models ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "model", "allows"),
    [
        (None, "gpt-4o", True),
        (None, "", True),
        (("gpt-4o",), "gpt-4o", True),
        (("gpt-4o",), "gpt-4o-mini", False),  # no prefix matching
        (("gpt-4o",), "GPT-4o", False),  # no case folding
        (("gpt-4o",), "openai/gpt-4o", False),
        (("gpt-4o", "claude-sonnet-4-5"), "claude-sonnet-4-5", True),
    ],
)
def test_allows_model(allowed: tuple[str, ...] | None, model: str, allows: bool) -> None:
    assert make_key(allowed_models=allowed).allows_model(model) is allows


@pytest.mark.parametrize(("role", "admin"), [(Role.OWNER, True), (Role.ADMIN, True), (Role.MEMBER, False)])
def test_owners_and_admins_manage_the_account(role: Role, admin: bool) -> None:
    assert make_member(role).is_admin is admin


def test_records_are_frozen() -> None:
    key = make_key()
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.name = "other"  # type: ignore[misc]  # the point: it cannot be assigned
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_member(Role.MEMBER).role = Role.OWNER  # type: ignore[misc]


# --- clean_fields and the rule tables ---------------------------------------------------------------------------


def test_each_rule_table_knows_exactly_the_fields_users_may_set() -> None:
    assert set(ACCOUNT_RULES) == {"name", "plan", "timezone", "spend_cap_nano", "cap_period", "tax_rate_ppm"}
    assert set(MEMBER_RULES) == {"email", "name", "role", "spend_cap_nano", "cap_period"}
    assert set(KEY_RULES) == {
        "name",
        "allowed_models",
        "agent_id",
        "app",
        "tags",
        "spend_cap_nano",
        "cap_period",
        "expires_at",
    }


@pytest.mark.parametrize(
    ("rules", "defaults"),
    [(ACCOUNT_RULES, ACCOUNT_DEFAULTS), (MEMBER_RULES, MEMBER_DEFAULTS), (KEY_RULES, KEY_DEFAULTS)],
    ids=["account", "member", "key"],
)
def test_defaults_cover_every_optional_field_and_pass_their_own_rules(
    rules: Mapping[str, Rule], defaults: Mapping[str, Any]
) -> None:
    assert set(defaults) < set(rules)
    assert clean_fields(rules, defaults) == dict(defaults)


@pytest.mark.parametrize("defaults", [ACCOUNT_DEFAULTS, MEMBER_DEFAULTS, KEY_DEFAULTS])
def test_defaults_and_rules_cannot_be_changed_by_a_caller(defaults: Mapping[str, Any]) -> None:
    with pytest.raises(TypeError):
        defaults["cap_period"] = Period.DAILY  # type: ignore[index]  # read-only mapping
    with pytest.raises(TypeError):
        KEY_RULES["name"] = str  # type: ignore[index]


def test_account_fields_are_normalised() -> None:
    cleaned = clean_fields(
        ACCOUNT_RULES,
        {
            "name": "  Acme  ",
            "plan": "enterprise",
            "timezone": "Asia/Kathmandu",
            "spend_cap_nano": 0,
            "cap_period": "weekly",
        },
    )
    assert cleaned == {
        "name": "Acme",
        "plan": Plan.ENTERPRISE,
        "timezone": "Asia/Kathmandu",
        "spend_cap_nano": 0,
        "cap_period": Period.WEEKLY,
    }
    assert type(cleaned["plan"]) is Plan and type(cleaned["cap_period"]) is Period


def test_member_fields_are_normalised() -> None:
    cleaned = clean_fields(MEMBER_RULES, {"email": " Ada@Example.com ", "name": "Ada", "role": "admin"})
    assert cleaned == {"email": "ada@example.com", "name": "Ada", "role": Role.ADMIN}


def test_key_fields_are_normalised() -> None:
    cleaned = clean_fields(
        KEY_RULES,
        {
            "name": " ci ",
            "allowed_models": ["gpt-4o", "gpt-4o"],
            "agent_id": "  ",
            "app": " billing ",
            "tags": ["a", "a", "b"],
            "spend_cap_nano": None,
            "cap_period": "daily",
            "expires_at": datetime(2026, 1, 1, 5, 45, tzinfo=timezone(timedelta(hours=5, minutes=45))),
        },
    )
    assert cleaned == {
        "name": "ci",
        "allowed_models": ("gpt-4o",),
        "agent_id": None,
        "app": "billing",
        "tags": ("a", "b"),
        "spend_cap_nano": None,
        "cap_period": Period.DAILY,
        "expires_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    assert cleaned["expires_at"].tzinfo is UTC


def test_only_the_fields_given_are_returned() -> None:
    """A change names only what it changes: nothing is filled in from the defaults."""
    assert clean_fields(KEY_RULES, {"app": None}) == {"app": None}
    assert clean_fields(ACCOUNT_RULES, {}) == {}


@pytest.mark.parametrize(
    ("rules", "values", "field", "message"),
    [
        (ACCOUNT_RULES, {"name": "ok", "plan": "gold"}, "plan", "must be one of free, pro, enterprise, not 'gold'"),
        (ACCOUNT_RULES, {"timezone": "Nowhere/Land"}, "timezone", "unknown timezone 'Nowhere/Land'"),
        (ACCOUNT_RULES, {"spend_cap_nano": -5}, "spend_cap", "must not be negative"),
        (ACCOUNT_RULES, {"cap_period": "hourly"}, "cap_period", "must be one of daily, weekly, monthly, total"),
        (ACCOUNT_RULES, {"tax_rate_ppm": 1_000_001}, "tax_rate", "must be a fraction from 0 to 1"),
        (MEMBER_RULES, {"email": "nobody"}, "email", "not an e-mail address: 'nobody'"),
        (MEMBER_RULES, {"role": "root"}, "role", "must be one of owner, admin, billing, member, not 'root'"),
        (MEMBER_RULES, {"name": ""}, "name", "must not be empty"),
        (KEY_RULES, {"allowed_models": []}, "allowed_models", "name at least one model"),
        (KEY_RULES, {"agent_id": "a" * 201}, "agent_id", "must be at most 200 characters"),
        (KEY_RULES, {"app": "a" * 201}, "app", "must be at most 200 characters"),
        (KEY_RULES, {"tags": ["ok", " "]}, "tags", "items must not be empty"),
        (KEY_RULES, {"spend_cap_nano": 10**19}, "spend_cap", "must be at most 1000000000 USD"),
    ],
)
def test_a_broken_rule_names_its_field(
    rules: Mapping[str, Rule], values: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        clean_fields(rules, values)
    assert caught.value.message.startswith(f"{field}: {message}")
    assert caught.value.details is not None and caught.value.details[0]["loc"] == field


def test_unknown_fields_are_a_programming_error_listing_them_sorted() -> None:
    with pytest.raises(TypeError, match="^unknown fields: colour, plan_b$"):
        clean_fields(ACCOUNT_RULES, {"name": "ok", "plan_b": 1, "colour": "red"})
    with pytest.raises(TypeError, match="unknown fields: email"):
        clean_fields(KEY_RULES, {"email": "a@b"})  # a member's field is not a key's


def test_unknown_fields_are_refused_before_any_rule_runs() -> None:
    """A bad known field next to an unknown one reports the programming error, not the user's."""
    with pytest.raises(TypeError):
        clean_fields(ACCOUNT_RULES, {"name": "", "bogus": 1})
