"""An account's alert rules: thresholds on caps, credits-low, anomaly detection, and where alerts go.

Kept as one JSON document per account (`alert_settings`), validated by these models on the way in and
read back through them. An account that never set any gets `AlertConfig()`: every key, member and account
cap alerts at 0.5, 0.8 and 0.95 of the cap by webhook, and the anomaly detectors run with their default
thresholds, also by webhook. The PagerDuty routing key is kept sealed (`alerts.store`): the document holds
`sealed:v1:...`, never the key.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from farebox.core.alerts import DESTINATION_URL_PATTERN, Action, Severity
from farebox.core.anomalies import AnomalyThresholds
from farebox.core.json_types import JSON_INTEGER, exact_decimal
from farebox.core.money import parse_usd
from farebox.core.owners import BLANK
from farebox.core.sealing import SEALED_PREFIX

__all__ = [
    "FRACTION_PATTERN",
    "Action",
    "AlertConfig",
    "AnomalySettings",
    "CreditsLow",
    "EmailAddress",
    "Fraction",
    "Multiplier",
    "ScopeAlerts",
    "SlackChannel",
    "Threshold",
    "Urgency",
    "WindowSeconds",
]

# A fraction of the places after the point that is not all zeros, for bounds that exclude their whole number.
_ABOVE = r"\.(?:[1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9])"


FRACTION_PATTERN = rf"^(?:0{_ABOVE}|1(?:\.0{{1,4}})?)$"
"""A fraction above 0 and at most 1 in plain notation, at most 4 decimal places: `0.8`, `0.95`, `1`."""
Fraction = Annotated[
    Decimal,
    Field(gt=0, le=1, max_digits=6, decimal_places=4),
    *exact_decimal(
        FRACTION_PATTERN,
        {"exclusiveMinimum": 0, "maximum": 1, "multipleOf": 0.0001},
        "a fraction above 0 and at most 1, at most 4 decimal places",
    ),
]
Amount = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=9),
    *exact_decimal(
        r"^[0-9]{1,9}(?:\.[0-9]{1,9})?$",
        {"minimum": 0, "exclusiveMaximum": 1_000_000_000, "multipleOf": 1e-9},
        "USD from 0 to under 1000000000, at most 9 decimal places",
    ),
]
Multiplier = Annotated[
    Decimal,
    Field(gt=1, le=10_000, max_digits=10, decimal_places=4),
    *exact_decimal(
        rf"^(?:1{_ABOVE}|[2-9](?:\.[0-9]{{1,4}})?|[1-9][0-9]{{1,3}}(?:\.[0-9]{{1,4}})?|10000(?:\.0{{1,4}})?)$",
        {"exclusiveMinimum": 1, "maximum": 10_000, "multipleOf": 0.0001},
        "a multiplier above 1 and at most 10000, at most 4 decimal places",
    ),
]


EmailAddress = Annotated[str, Field(pattern=rf"^[^@{BLANK},]+@[^@{BLANK},]+$", max_length=254)]
SlackChannel = Annotated[str, Field(pattern=r"^[#@]?[A-Za-z0-9._-]{1,80}$", description="`#alerts`, or a channel id.")]
WindowSeconds = Annotated[int, Field(ge=3600, le=86_400 * 7, multiple_of=3600), JSON_INTEGER]
Urgency = Literal["high", "low"]
"""How urgently people should hear of an alert, as PagerDuty has it: `high` pages (severity `critical`), `low` does
not (severity `warning`)."""
_SEVERITY: dict[Urgency | None, Severity] = {"high": "critical", "low": "warning", None: "warning"}
_ROUTING_KEY = rf"^(?:[A-Za-z0-9]{{32}}|{SEALED_PREFIX}v1:[0-9a-f]{{8}}:[A-Za-z0-9_=-]+)$"
"""An Events API v2 integration key (32 letters and digits: PagerDuty refuses any other length), or one sealed."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _webhook_only() -> list[Action]:
    return ["webhook"]


def _unique(actions: list[Action]) -> list[Action]:
    return list(dict.fromkeys(actions))


class Threshold(_Model):
    """Fire once per cap period when spend reaches `fraction` of the cap."""

    fraction: Fraction
    actions: list[Action] = Field(default_factory=_webhook_only)
    message: str | None = Field(None, max_length=500, description="Replaces the default alert text.")
    recipients: list[EmailAddress] | None = Field(
        None, min_length=1, max_length=50, description="Where `email` goes instead of `email_recipients`."
    )
    channels: list[SlackChannel] | None = Field(
        None, min_length=1, max_length=20, description="Slack channels `slack` names, one message each."
    )
    urgency: Urgency | None = Field(None, description="`high`: PagerDuty severity `critical`; else `warning`.")

    _actions = field_validator("actions")(_unique)

    @property
    def severity(self) -> Severity:
        """What the threshold's `pagerduty` action tells PagerDuty."""
        return _SEVERITY[self.urgency]


class CreditsLow(_Model):
    """Fire once per cap period when what the cap still allows drops below `below` USD."""

    below: Amount
    actions: list[Action] = Field(default_factory=_webhook_only)

    _actions = field_validator("actions")(_unique)

    @property
    def below_nano(self) -> int:
        return parse_usd(self.below)


def _default_thresholds() -> list[Threshold]:
    return [Threshold(fraction=Decimal(f)) for f in ("0.5", "0.8", "0.95")]


class ScopeAlerts(_Model):
    """The alert rules of one kind of cap (keys, members, or the account's own)."""

    enabled: StrictBool = True
    thresholds: list[Threshold] = Field(default_factory=_default_thresholds, max_length=20)
    credits_low: CreditsLow | None = None

    @field_validator("thresholds")
    @classmethod
    def _distinct(cls, value: list[Threshold]) -> list[Threshold]:
        fractions = [threshold.fraction for threshold in value]
        if len(set(fractions)) != len(fractions):
            raise ValueError("each fraction may appear once")
        return sorted(value, key=lambda threshold: threshold.fraction)


class AnomalySettings(_Model):
    """Anomaly detection for the account: what counts as one, and who hears of it."""

    enabled: StrictBool = True
    actions: list[Action] = Field(default_factory=_webhook_only)
    window_seconds: WindowSeconds = 3600
    spike_multiplier: Multiplier = Decimal("3")
    baseline_hours: Annotated[int, Field(ge=1, le=24 * 60), JSON_INTEGER] = 168
    spike_min: Amount = Decimal("1")
    quiet_daily_max: Amount = Decimal("0.50")
    leak_min: Amount = Decimal("5")
    runaway_days: Annotated[int, Field(ge=2, le=60), JSON_INTEGER] = 7
    runaway_quiet_days: Annotated[int, Field(ge=1, le=60), JSON_INTEGER] = 5
    runaway_zero_day_max: Amount = Decimal("0.01")
    runaway_multiplier: Multiplier = Decimal("10")
    runaway_min: Amount = Decimal("5")
    projection_min_elapsed: Fraction = Decimal("0.1")

    _actions = field_validator("actions")(_unique)

    @model_validator(mode="after")
    def _quiet_days_fit(self) -> AnomalySettings:
        if self.runaway_quiet_days > self.runaway_days:
            raise ValueError("runaway_quiet_days may not exceed runaway_days")
        return self

    def thresholds(self) -> AnomalyThresholds:
        """The detectors' thresholds (amounts in nano-USD)."""
        return AnomalyThresholds(
            window_seconds=self.window_seconds,
            spike_multiplier=self.spike_multiplier,
            baseline_hours=self.baseline_hours,
            spike_min_nano=parse_usd(self.spike_min),
            quiet_daily_max_nano=parse_usd(self.quiet_daily_max),
            leak_min_nano=parse_usd(self.leak_min),
            runaway_days=self.runaway_days,
            runaway_quiet_days=self.runaway_quiet_days,
            runaway_zero_day_max_nano=parse_usd(self.runaway_zero_day_max),
            runaway_multiplier=self.runaway_multiplier,
            runaway_min_nano=parse_usd(self.runaway_min),
            projection_min_elapsed=self.projection_min_elapsed,
        )


class AlertConfig(_Model):
    """Every alert rule of an account, and the e-mail and Slack destinations its actions use."""

    keys: ScopeAlerts = Field(default_factory=ScopeAlerts, description="Rules for every key's cap.")
    members: ScopeAlerts = Field(default_factory=ScopeAlerts, description="Rules for every member's cap.")
    account: ScopeAlerts = Field(default_factory=ScopeAlerts, description="Rules for the account's own cap.")
    key_overrides: dict[str, ScopeAlerts] = Field(
        default_factory=dict, max_length=10_000, description="Rules for particular keys (by id), replacing `keys`."
    )
    email_recipients: list[EmailAddress] = Field(default_factory=list, max_length=50)
    slack_webhook_url: str | None = Field(
        None, min_length=1, max_length=2000, json_schema_extra={"pattern": DESTINATION_URL_PATTERN}
    )
    pagerduty_routing_key: str | None = Field(
        None,
        pattern=_ROUTING_KEY,
        description="The Events API v2 integration key `pagerduty` actions use (32 letters and digits). Answered "
        "sealed (`sealed:v1:...`), which a PUT may send back to keep it.",
    )
    anomalies: AnomalySettings = Field(default_factory=AnomalySettings)

    def rules_for(self, scope: str, scope_id: str) -> ScopeAlerts:
        """The rules that apply to one key's, member's or account's cap."""
        if scope == "key":
            return self.key_overrides.get(scope_id, self.keys)
        return self.members if scope == "member" else self.account

    def _enabled(self) -> list[ScopeAlerts]:
        scopes = [self.keys, self.members, self.account, *self.key_overrides.values()]
        return [rules for rules in scopes if rules.enabled]

    def actions_used(self) -> set[Action]:
        """Every action some rule takes (to check its destination is configured)."""
        used: set[Action] = set(self.anomalies.actions) if self.anomalies.enabled else set()
        for rules in self._enabled():
            used.update(action for threshold in rules.thresholds for action in threshold.actions)
            if rules.credits_low is not None:
                used.update(rules.credits_low.actions)
        return used

    def mails_nobody(self) -> bool:
        """Whether some rule's `email` action has no recipients: none of its threshold's, and none of the account's."""
        if self.email_recipients:
            return False
        if self.anomalies.enabled and "email" in self.anomalies.actions:
            return True
        for rules in self._enabled():
            if any("email" in t.actions and not t.recipients for t in rules.thresholds):
                return True
            if rules.credits_low is not None and "email" in rules.credits_low.actions:
                return True
        return False
