"""Who may spend: accounts (organisations), their members, and the virtual keys members hold.

These are the value objects the directory hands out, and the pure rules that check what users type
(names, e-mail addresses, timezones, model lists, tags, caps) before anything is written. A rule that
fails raises `ValidationFailed` (422) naming the field, so the API and the CLI report the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Any, TypedDict, TypeVar
from zoneinfo import available_timezones

from farebox.core.periods import Period
from farebox.core.tax import PPM
from farebox.errors import ValidationFailed

__all__ = [
    "ACCOUNT_DEFAULTS",
    "ACCOUNT_RULES",
    "BLANK",
    "EMAIL_PATTERN",
    "KEY_DEFAULTS",
    "KEY_RULES",
    "MAX_CAP_NANO",
    "MEMBER_DEFAULTS",
    "MEMBER_RULES",
    "NAME_PATTERN",
    "Account",
    "AccountChanges",
    "KeyChanges",
    "KeyStatus",
    "Member",
    "MemberChanges",
    "NewAccount",
    "NewKey",
    "NewMember",
    "Plan",
    "Role",
    "Rule",
    "VirtualKey",
    "as_utc",
    "check_cap",
    "check_timezone",
    "choice",
    "clean_email",
    "clean_fields",
    "clean_label",
    "clean_models",
    "clean_name",
    "clean_tags",
    "invalid",
    "percent_used",
    "timezone_names",
]

E = TypeVar("E", bound=StrEnum)

MAX_CAP_NANO = 10**18
"""The largest spend cap, a billion USD: far from the 64-bit limit of the ledger's integer columns."""
_MAX_NAME = 200
_MAX_EMAIL = 320
# Exactly the characters `str.isspace()` (and so `str.strip()`) counts as blank. Spelled out, because `\s`
# means another set in each regex engine that reads these patterns (Python's, ECMA's in JSON Schema, Rust's).
BLANK = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NAME_PATTERN = rf"[^{BLANK}]"
"""What a name, tag or model name must contain (anywhere): a character that is not blank."""
EMAIL_PATTERN = rf"^[{BLANK}]*[^@{BLANK}]+@[^@{BLANK}]+[{BLANK}]*$"
"""An e-mail address as typed: `local@domain`, blanks around it allowed (they are removed)."""
_EMAIL = re.compile(EMAIL_PATTERN)
_PERCENT = Decimal("0.01")


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class Role(StrEnum):
    """A member's role: what its personal API tokens may do in its account.

    Owners and admins manage the account (keys, caps, members; an admin not owners); billing reads all
    of the account's usage and changes nothing; a member sees only its own keys and their usage.
    """

    OWNER = "owner"
    ADMIN = "admin"
    BILLING = "billing"
    MEMBER = "member"


class KeyStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    DISABLED = "disabled"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Account:
    """An organisation: the unit of billing and of the account-wide spend cap."""

    id: str
    name: str
    plan: Plan
    timezone: str
    """IANA timezone name; spend-cap periods start at local midnight in it."""
    spend_cap_nano: int | None
    """Spend allowed per `cap_period` in nano-USD; None for no cap."""
    cap_period: Period
    tax_rate_ppm: int
    """The tax rate of its billing export, in parts per million (`farebox.core.tax`); 0 for none."""
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    """A person in one account. Usage through the member's keys is attributed to the member."""

    id: str
    account_id: str
    email: str
    """Lower-cased; unique within the account."""
    name: str
    role: Role
    spend_cap_nano: int | None
    cap_period: Period
    created_at: datetime
    updated_at: datetime
    has_password: bool = False
    """Whether the member has a password (`core.passwords`); its hash never leaves the ledger."""
    password_changed_at: datetime | None = None
    """When a password was last set or removed; None if never."""
    erased_at: datetime | None = None
    """When its name and e-mail address were pseudonymised (`Directory.erase_member`); None if never."""

    @property
    def is_admin(self) -> bool:
        """Whether the member may manage its account (an owner or an admin)."""
        return self.role in (Role.OWNER, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A virtual key. Its secret is never held here: only the ledger's hash of it exists after creation."""

    id: str
    account_id: str
    member_id: str | None
    """The member usage is attributed to; None for an account-level key."""
    name: str
    display_prefix: str
    """The start of the current secret, safe to show (e.g. `fbx_sk_Ab3dE9…`)."""
    allowed_models: tuple[str, ...] | None
    """Models the key may call; None for every model."""
    agent_id: str | None
    app: str | None
    tags: tuple[str, ...]
    spend_cap_nano: int | None
    cap_period: Period
    expires_at: datetime | None
    revoked_at: datetime | None
    disabled_at: datetime | None
    """Set when an alert's `disable_key` action (or an admin) stopped the key; enabling it clears this."""
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime

    def status(self, now: datetime) -> KeyStatus:
        """Revoked (for good), disabled (until enabled again), expired (at or after `expires_at`), or active."""
        if self.revoked_at is not None:
            return KeyStatus.REVOKED
        if self.disabled_at is not None:
            return KeyStatus.DISABLED
        if self.expires_at is not None and now >= self.expires_at:
            return KeyStatus.EXPIRED
        return KeyStatus.ACTIVE

    def allows_model(self, model: str) -> bool:
        """Whether the key may call `model`."""
        return self.allowed_models is None or model in self.allowed_models


class _AccountFields(TypedDict, total=False):
    plan: Plan | str
    timezone: str
    spend_cap_nano: int | None
    cap_period: Period | str
    tax_rate_ppm: int


class NewAccount(_AccountFields):
    """Fields of a new account: `name` is required, the rest default to `ACCOUNT_DEFAULTS`."""

    name: str


class AccountChanges(_AccountFields, total=False):
    """Fields `Directory.update_account` may change; a field left out is left as it is."""

    name: str


class _MemberFields(TypedDict, total=False):
    role: Role | str
    spend_cap_nano: int | None
    cap_period: Period | str


class NewMember(_MemberFields):
    """Fields of a new member: `email` and `name` are required, the rest default to `MEMBER_DEFAULTS`."""

    email: str
    name: str


class MemberChanges(_MemberFields, total=False):
    """Fields `Directory.update_member` may change; a field left out is left as it is."""

    email: str
    name: str


class _KeyFields(TypedDict, total=False):
    allowed_models: Sequence[str] | None
    agent_id: str | None
    app: str | None
    tags: Sequence[str]
    spend_cap_nano: int | None
    cap_period: Period | str
    expires_at: datetime | None


class NewKey(_KeyFields):
    """Fields of a new virtual key: `name` is required, the rest default to `KEY_DEFAULTS`."""

    name: str


class KeyChanges(_KeyFields, total=False):
    """Fields `Directory.update_key` may change. None clears a nullable field; a past `expires_at` expires."""

    name: str


ACCOUNT_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"plan": Plan.FREE, "timezone": "UTC", "spend_cap_nano": None, "cap_period": Period.MONTHLY, "tax_rate_ppm": 0}
)
MEMBER_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"role": Role.MEMBER, "spend_cap_nano": None, "cap_period": Period.MONTHLY}
)
KEY_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "allowed_models": None,
        "agent_id": None,
        "app": None,
        "tags": (),
        "spend_cap_nano": None,
        "cap_period": Period.MONTHLY,
        "expires_at": None,
    }
)
"""What a field left out of a new account, member or key is."""


def invalid(field: str, message: str) -> ValidationFailed:
    """The 422 error for one bad field."""
    return ValidationFailed(f"{field}: {message}", details=[{"loc": field, "message": message}])


def choice(kind: type[E], value: str, *, field: str) -> E:
    """`value` as a member of the enum `kind`, or a 422 listing the allowed values."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise invalid(field, f"must be one of {allowed}, not {value!r}") from None


def clean_name(value: str, *, field: str = "name") -> str:
    """A display name: surrounding blanks removed, not empty, at most 200 characters."""
    name = value.strip()
    if not name:
        raise invalid(field, "must not be empty")
    if len(name) > _MAX_NAME:
        raise invalid(field, f"must be at most {_MAX_NAME} characters")
    return name


def clean_label(value: str | None, *, field: str) -> str | None:
    """An optional short label (agent id, app): blank means none; at most 200 characters."""
    label = (value or "").strip()
    if len(label) > _MAX_NAME:
        raise invalid(field, f"must be at most {_MAX_NAME} characters")
    return label or None


def clean_email(value: str) -> str:
    """An e-mail address, lower-cased so that uniqueness within an account ignores case."""
    email = value.strip().lower()
    if len(email) > _MAX_EMAIL or not _EMAIL.match(value):
        raise invalid("email", f"not an e-mail address: {value!r}")
    return email


@cache
def timezone_names() -> frozenset[str]:
    """The IANA timezone names this machine knows (read once)."""
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """An IANA timezone name that this machine knows, e.g. `Europe/Paris`."""
    if name not in timezone_names():
        raise invalid("timezone", f"unknown timezone {name!r} (use an IANA name such as 'Europe/Paris')")
    return name


def check_tax_rate(ppm: int) -> int:
    """A tax rate in parts per million: from 0 to 1,000,000 (100 %)."""
    if not 0 <= ppm <= PPM:
        raise invalid("tax_rate", "must be a fraction from 0 to 1")
    return ppm


def check_cap(nano: int | None, *, field: str = "spend_cap") -> int | None:
    """A spend cap in nano-USD: None (no cap), or from zero to `MAX_CAP_NANO` (a billion USD)."""
    if nano is not None and nano < 0:
        raise invalid(field, "must not be negative")
    if nano is not None and nano > MAX_CAP_NANO:
        raise invalid(field, "must be at most 1000000000 USD")
    return nano


def _clean_items(values: Iterable[str], *, field: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        item = value.strip()
        if not item:
            raise invalid(field, "items must not be empty")
        if len(item) > _MAX_NAME:
            raise invalid(field, f"items must be at most {_MAX_NAME} characters")
        seen[item] = None
    return tuple(seen)


def clean_models(models: Iterable[str] | None) -> tuple[str, ...] | None:
    """Allowed models, de-duplicated in order; None means every model. An empty list is refused."""
    if models is None:
        return None
    cleaned = _clean_items(models, field="allowed_models")
    if not cleaned:
        raise invalid("allowed_models", "name at least one model, or null for every model")
    return cleaned


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags, de-duplicated in order."""
    return _clean_items(tags, field="tags")


def as_utc(at: datetime | None) -> datetime | None:
    """An aware datetime in UTC; a naive one is taken as UTC."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


Rule = Callable[[Any], Any]


def _one_of(kind: type[StrEnum], field: str) -> Rule:
    return lambda value: choice(kind, value, field=field)


def _label(field: str) -> Rule:
    return lambda value: clean_label(value, field=field)


# How each field a user may set is checked and normalised, per kind of record.
ACCOUNT_RULES: Mapping[str, Rule] = MappingProxyType(
    {
        "name": clean_name,
        "plan": _one_of(Plan, "plan"),
        "timezone": check_timezone,
        "spend_cap_nano": check_cap,
        "cap_period": _one_of(Period, "cap_period"),
        "tax_rate_ppm": check_tax_rate,
    }
)
MEMBER_RULES: Mapping[str, Rule] = MappingProxyType(
    {
        "email": clean_email,
        "name": clean_name,
        "role": _one_of(Role, "role"),
        "spend_cap_nano": check_cap,
        "cap_period": _one_of(Period, "cap_period"),
    }
)
KEY_RULES: Mapping[str, Rule] = MappingProxyType(
    {
        "name": clean_name,
        "allowed_models": clean_models,
        "agent_id": _label("agent_id"),
        "app": _label("app"),
        "tags": clean_tags,
        "spend_cap_nano": check_cap,
        "cap_period": _one_of(Period, "cap_period"),
        "expires_at": as_utc,
    }
)


def clean_fields(rules: Mapping[str, Rule], values: Mapping[str, Any]) -> dict[str, Any]:
    """User-given fields, each checked and normalised by its rule.

    Raises:
        ValidationFailed: a field breaks its rule (the error names the field).
        TypeError: a field that `rules` does not know (a programming error, not user input).
    """
    unknown = set(values) - set(rules)
    if unknown:
        raise TypeError(f"unknown fields: {', '.join(sorted(unknown))}")
    return {name: rules[name](value) for name, value in values.items()}


def percent_used(spent_nano: int, cap_nano: int | None) -> Decimal | None:
    """Share of a cap spent, in percent to two places (half to even); None without a cap.

    A cap of zero allows nothing, so it counts as fully used.
    """
    if cap_nano is None:
        return None
    if cap_nano == 0:
        return Decimal(100).quantize(_PERCENT)
    return (Decimal(spent_nano) * 100 / Decimal(cap_nano)).quantize(_PERCENT, rounding=ROUND_HALF_EVEN)
