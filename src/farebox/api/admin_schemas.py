"""Request and response bodies of the admin API, and how accounts, members and keys are presented.

Money is exact both ways. Responses carry amounts as decimal USD strings (`"50.00"`). Requests may
send an amount as a string (`"50.00"`), an integer, or a JSON number: the admin routes are
`farebox.api.exact_json.DecimalJSONRoute`s, which read request JSON with `parse_float=Decimal`, so `50.25`
arrives as the exact decimal `50.25`, never through a float. Amounts are in USD with at most 9 decimal places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from farebox.api.fields import Email, Name, TaxRate, Timezone, Usd
from farebox.core.credentials import MemberToken
from farebox.core.json_types import JSON_INTEGER, Time
from farebox.core.money import format_usd
from farebox.core.owners import Account, KeyStatus, Member, Plan, Role, VirtualKey, percent_used
from farebox.core.periods import Period
from farebox.core.tax import format_rate
from farebox.ledger.directory import MAX_GRACE_SECONDS, Directory

__all__ = [
    "AccountIn",
    "AccountOut",
    "AccountPatch",
    "KeyCreated",
    "KeyFields",
    "KeyIn",
    "KeyOut",
    "KeyPatch",
    "ListOf",
    "MemberIn",
    "MemberOut",
    "MemberPatch",
    "Out",
    "PasswordIn",
    "RotateIn",
    "DisableIn",
    "TokenCreated",
    "TokenIn",
    "TokenOut",
    "present",
    "present_all",
]

_MAX_DAYS = 36_500
Days = Annotated[int, Field(ge=1, le=_MAX_DAYS), JSON_INTEGER]
T = TypeVar("T", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _partial: ClassVar[bool] = False

    def changes(self) -> dict[str, Any]:
        """The fields given (every field of a new record), with `spend_cap` renamed `spend_cap_nano`."""
        given = self.model_dump(exclude_unset=self._partial)
        if "spend_cap" in given:
            given["spend_cap_nano"] = given.pop("spend_cap")
        if "tax_rate" in given:
            given["tax_rate_ppm"] = given.pop("tax_rate")
        return given


class _Patch(_Body):
    """A partial update: a field left out stays as it is; null clears a field that may be empty."""

    _partial = True
    _required: ClassVar[tuple[str, ...]] = ()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls._required:
            raise ValueError("may not be null")
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The schema says what `_not_null` refuses: the fields in `_required` take no null."""
        schema = handler(core_schema)
        properties = handler.resolve_ref_schema(schema)["properties"]
        for name in cls._required:
            field = properties[name]
            field.pop("default", None)
            options = [option for option in field.pop("anyOf") if option.get("type") != "null"]
            field.update(options[0] if len(options) == 1 else {"anyOf": options})
        return schema


_ONE_EXPIRY: dict[str, Any] = {"not": {"required": ["expires_at", "expires_in_days"]}}
"""JSON Schema for `_expiry`'s rule: expires_at or expires_in_days, not both (not even one of them null)."""


class AccountIn(_Body):
    name: Name
    plan: Plan = Plan.FREE
    timezone: Timezone = "UTC"
    spend_cap: Usd | None = None
    cap_period: Period = Period.MONTHLY
    tax_rate: TaxRate = Field(0, description="The rate the billing export taxes each line at; 0 for none.")


class AccountPatch(_Patch):
    _required = ("name", "plan", "timezone", "cap_period", "tax_rate")
    name: Name | None = None
    plan: Plan | None = None
    timezone: Timezone | None = None
    spend_cap: Usd | None = None
    cap_period: Period | None = None
    tax_rate: TaxRate | None = None


class MemberIn(_Body):
    email: Email
    name: Name
    role: Role = Role.MEMBER
    spend_cap: Usd | None = None
    cap_period: Period = Period.MONTHLY


class MemberPatch(_Patch):
    _required = ("email", "name", "role", "cap_period")
    email: Email | None = None
    name: Name | None = None
    role: Role | None = None
    spend_cap: Usd | None = None
    cap_period: Period | None = None


class PasswordIn(_Body):
    password: SecretStr = Field(
        description="At least 12 and at most 1,024 characters (after Unicode NFKC normalisation), not the "
        "member's e-mail address. Only its argon2id hash is kept."
    )


class KeyFields(BaseModel):
    model_config = ConfigDict(json_schema_extra=_ONE_EXPIRY)

    allowed_models: list[Name] | None = Field(
        None, min_length=1, description="Models the key may call; null for every model."
    )
    agent_id: str | None = Field(None, max_length=200)
    app: str | None = Field(None, max_length=200)
    spend_cap: Usd | None = None
    expires_at: Time | None = Field(None, description="When the key stops working; in the future when creating it.")
    expires_in_days: Days | None = Field(None, description="Instead of expires_at.")


class KeyIn(KeyFields, _Body):
    account_id: str
    member_id: str | None = Field(
        None, description="Who usage is attributed to; defaults to the calling member (none for the master key)."
    )
    name: Name
    tags: list[Name] = []
    cap_period: Period = Period.MONTHLY


class KeyPatch(KeyFields, _Patch):
    _required = ("name", "tags", "cap_period", "expires_in_days")
    name: Name | None = None
    tags: list[Name] | None = None
    cap_period: Period | None = None


class DisableIn(_Body):
    reason: str = Field("disabled by an admin", min_length=1, max_length=500)


class TokenIn(_Body):
    model_config = ConfigDict(json_schema_extra=_ONE_EXPIRY)

    name: Name = Field(description="What the token is for, e.g. the machine or script holding it.")
    expires_in_days: Days | None = Field(None, description="Expire N days from now.")
    expires_at: Time | None = Field(None, description="Expire at this time; give this or expires_in_days.")


class RotateIn(_Body):
    grace_period_seconds: Annotated[int, Field(ge=0, le=MAX_GRACE_SECONDS), JSON_INTEGER] = Field(
        0, description="How long the old secret still works."
    )


SpendCap = Annotated[str | None, Field(description="Cap per cap period, decimal USD; null for no cap.")]
Spend = Annotated[str, Field(description="Spent in the current cap period (account's timezone), decimal USD.")]
PercentUsed = Annotated[str | None, Field(description="spend / spend_cap in percent, two places; null for no cap.")]


class AccountOut(BaseModel):
    id: str
    name: str
    plan: Plan
    timezone: str
    spend_cap: SpendCap
    spend: Spend
    cap_period: Period
    percent_used: PercentUsed
    tax_rate: str = Field(description="The billing export's tax rate, a decimal fraction (`0.0825`); `0` for none.")
    created_at: datetime
    updated_at: datetime


class MemberOut(BaseModel):
    id: str
    account_id: str
    email: str
    name: str
    role: Role
    spend_cap: SpendCap
    spend: Spend
    cap_period: Period
    percent_used: PercentUsed
    has_password: bool = Field(description="Whether the member has a password (for the dashboard); never the password.")
    erased_at: datetime | None = Field(None, description="When its name and e-mail address were pseudonymised.")
    created_at: datetime
    updated_at: datetime


class KeyOut(BaseModel):
    id: str
    name: str
    account_id: str
    member_id: str | None = Field(description="The member usage is attributed to; null for an account-level key.")
    key_prefix: str = Field(description="The start of the secret, for recognising it; never the secret.")
    status: KeyStatus
    allowed_models: list[str] | None = Field(description="Models the key may call; null for every model.")
    agent_id: str | None
    app: str | None
    tags: list[str]
    spend_cap: SpendCap
    spend: Spend
    cap_period: Period
    percent_used: PercentUsed
    expires_at: datetime | None
    revoked_at: datetime | None
    disabled_at: datetime | None = Field(description="When an alert's `disable_key` action or an admin stopped it.")
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class KeyCreated(KeyOut):
    key: str = Field(description="The secret. Shown in this response only: store it now.")


class TokenOut(BaseModel):
    id: str
    account_id: str
    member_id: str
    name: str
    token_prefix: str = Field(description="The start of the secret, for recognising it; never the secret.")
    status: KeyStatus = Field(description="active, revoked or expired.")
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="When it last authenticated a request (to the minute).")
    created_at: datetime

    @classmethod
    def of(cls, token: MemberToken, *, now: datetime) -> TokenOut:
        """The JSON model of a token (never its secret)."""
        values = {field.name: getattr(token, field.name) for field in fields(token)}
        return cls.model_validate(values | {"token_prefix": token.display_prefix, "status": token.status(now)})


class TokenCreated(TokenOut):
    token: str = Field(description="The secret. Shown in this response only: store it now.")


class ListOf(BaseModel, Generic[T]):
    data: list[T]


Out = TypeVar("Out", AccountOut, MemberOut, KeyOut)


def present(cls: type[Out], owner: Account | Member | VirtualKey, *, spent: int, now: datetime) -> Out:
    """The JSON model of an account, member or key (never a secret), with its spend in its cap period."""
    values: dict[str, Any] = {field.name: getattr(owner, field.name) for field in fields(owner)}
    percent = percent_used(spent, owner.spend_cap_nano)
    values["spend_cap"] = None if owner.spend_cap_nano is None else format_usd(owner.spend_cap_nano)
    values["spend"] = format_usd(spent)
    values["percent_used"] = None if percent is None else str(percent)
    if isinstance(owner, Account):
        values["tax_rate"] = format_rate(owner.tax_rate_ppm)
    if isinstance(owner, VirtualKey):
        values["key_prefix"] = owner.display_prefix
        values["status"] = owner.status(now)
    return cls.model_validate(values)


async def present_all(
    cls: type[Out], directory: Directory, owners: Sequence[Account | Member | VirtualKey]
) -> list[Out]:
    """`present` many accounts, members or keys, reading their spend in one go."""
    now = directory.now()
    return [present(cls, o, spent=s, now=now) for o, s in zip(owners, await directory.spends(owners), strict=True)]
