"""Seed 004's budget alert settings, and how they map onto an account's alert rules (`farebox.alerts.config`).

The seed's body is a view of three parts of `AlertConfig`; each part it names replaces what it maps onto, and
everything else in the account's rules (members' rules, per-key overrides, credits-low rules, destinations, the
other anomaly thresholds) stays as it was:

- `globalBudgetAlerts` is the rules of the account's own cap (`account`): `enabled`, and each threshold's
  `percentage` (`fraction`), `actions`, `recipients`, `channels`, `urgency` and `message`;
- `virtualKeyBudgetAlerts` is the rules of every key's cap (`keys`): `enabled`, and a threshold per
  `defaultThresholds` fraction with its `actions` entry (none: `["webhook"]`);
- `costSpikesDetection` is the anomaly detectors' `enabled` and `actions` (every detector's), and the spike
  detector's `spike_multiplier` (`thresholdMultiplier`) and `window_seconds` (`timeWindow`), which the leaked-key
  detector shares.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from farebox.alerts.config import (
    FRACTION_PATTERN,
    Action,
    AlertConfig,
    AnomalySettings,
    EmailAddress,
    Fraction,
    Multiplier,
    ScopeAlerts,
    SlackChannel,
    Threshold,
    Urgency,
    WindowSeconds,
)

__all__ = [
    "BudgetAlertSettings",
    "CostSpikesDetection",
    "GlobalBudgetAlerts",
    "GlobalThreshold",
    "VirtualKeyBudgetAlerts",
    "seed_view",
]

GlobalAction = Literal["webhook", "email", "slack", "pagerduty"]
"""What a threshold of the account's own cap may do (`disable_key` stops a key: it is for keys' thresholds)."""


class _Seed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _webhook_only() -> list[Any]:
    return ["webhook"]


def _unique(actions: list[Any]) -> list[Any]:
    return list(dict.fromkeys(actions))


def _distinct(fractions: list[Decimal], what: str) -> None:
    if len(set(fractions)) != len(fractions):
        raise ValueError(f"each {what} may appear once")


class GlobalThreshold(_Seed):
    """Fire once per cap period when the account's spend reaches `percentage` of its cap."""

    percentage: Fraction
    actions: list[GlobalAction] = Field(default_factory=_webhook_only)
    recipients: list[EmailAddress] | None = Field(
        None, min_length=1, max_length=50, description="Where `email` goes (default: the account's recipients)."
    )
    channels: list[SlackChannel] | None = Field(
        None, min_length=1, max_length=20, description="Slack channels `slack` posts to, one message each."
    )
    urgency: Urgency | None = Field(None, description="`high`: `pagerduty` pages (severity `critical`).")
    message: str | None = Field(None, min_length=1, max_length=500, description="Replaces the default alert text.")

    _actions = field_validator("actions")(_unique)


class GlobalBudgetAlerts(_Seed):
    """Thresholds on the account's own spend cap."""

    enabled: StrictBool = True
    thresholds: list[GlobalThreshold] = Field(default_factory=list, max_length=20)

    @field_validator("thresholds")
    @classmethod
    def _once_each(cls, value: list[GlobalThreshold]) -> list[GlobalThreshold]:
        _distinct([threshold.percentage for threshold in value], "percentage")
        return sorted(value, key=lambda threshold: threshold.percentage)


class VirtualKeyBudgetAlerts(_Seed):
    """Thresholds on every key's spend cap (a key with its own override keeps it), each with its actions."""

    enabled: StrictBool = True
    default_thresholds: list[Fraction] = Field(
        default_factory=lambda: [Decimal("0.5"), Decimal("0.8"), Decimal("0.95")],
        alias="defaultThresholds",
        max_length=20,
    )
    actions: dict[Fraction, list[Action]] = Field(
        default_factory=dict,
        max_length=20,
        description='Per threshold (the fraction as a string, `"0.8"`), its actions; a threshold without: webhook.',
        json_schema_extra={"propertyNames": {"pattern": FRACTION_PATTERN}},
    )

    @model_validator(mode="after")
    def _actions_of_thresholds(self) -> VirtualKeyBudgetAlerts:
        _distinct(self.default_thresholds, "threshold")
        unknown = [fraction for fraction in self.actions if fraction not in self.default_thresholds]
        if unknown:
            raise ValueError(f"actions: {format(unknown[0], 'f')} is not one of defaultThresholds")
        return self

    def thresholds(self) -> list[Threshold]:
        return [
            Threshold(fraction=fraction, actions=self.actions.get(fraction, _webhook_only()))
            for fraction in self.default_thresholds
        ]


class CostSpikesDetection(_Seed):
    """The anomaly detectors' switch and actions, and the spike detector's multiplier and window."""

    enabled: StrictBool = True
    threshold_multiplier: Multiplier = Field(Decimal("3"), alias="thresholdMultiplier")
    time_window: WindowSeconds = Field(3600, alias="timeWindow")
    actions: list[Action] = Field(default_factory=_webhook_only)

    _actions = field_validator("actions")(_unique)


class BudgetAlertSettings(_Seed):
    """`PUT /api/admin/budgets/alerts`: the parts given replace what they map onto; a part left out stays."""

    global_budget_alerts: Annotated[GlobalBudgetAlerts | None, Field(alias="globalBudgetAlerts")] = None
    virtual_key_budget_alerts: Annotated[VirtualKeyBudgetAlerts | None, Field(alias="virtualKeyBudgetAlerts")] = None
    cost_spikes_detection: Annotated[CostSpikesDetection | None, Field(alias="costSpikesDetection")] = None

    def applied_to(self, config: AlertConfig) -> AlertConfig:
        """The account's rules with the parts given replaced."""
        changes: dict[str, Any] = {}
        given = self.global_budget_alerts
        if given is not None:
            thresholds = [
                Threshold(
                    fraction=t.percentage,
                    actions=list(t.actions),
                    message=t.message,
                    recipients=t.recipients,
                    channels=t.channels,
                    urgency=t.urgency,
                )
                for t in given.thresholds
            ]
            changes["account"] = ScopeAlerts(
                enabled=given.enabled, thresholds=thresholds, credits_low=config.account.credits_low
            )
        keys = self.virtual_key_budget_alerts
        if keys is not None:
            changes["keys"] = ScopeAlerts(
                enabled=keys.enabled, thresholds=keys.thresholds(), credits_low=config.keys.credits_low
            )
        spikes = self.cost_spikes_detection
        if spikes is not None:
            changes["anomalies"] = AnomalySettings.model_validate(
                config.anomalies.model_dump()
                | {
                    "enabled": spikes.enabled,
                    "actions": spikes.actions,
                    "spike_multiplier": spikes.threshold_multiplier,
                    "window_seconds": spikes.time_window,
                }
            )
        return config.model_copy(update=changes)


def seed_view(config: AlertConfig) -> dict[str, Any]:
    """An account's alert rules in the seed's shape (fractions and the multiplier as exact `Decimal`s)."""
    anomalies = config.anomalies
    return {
        "globalBudgetAlerts": {
            "enabled": config.account.enabled,
            "thresholds": [_global(threshold) for threshold in config.account.thresholds],
        },
        "virtualKeyBudgetAlerts": {
            "enabled": config.keys.enabled,
            "defaultThresholds": [threshold.fraction for threshold in config.keys.thresholds],
            "actions": {format(t.fraction.normalize(), "f"): list(t.actions) for t in config.keys.thresholds},
        },
        "costSpikesDetection": {
            "enabled": anomalies.enabled,
            "thresholdMultiplier": anomalies.spike_multiplier,
            "timeWindow": anomalies.window_seconds,
            "actions": list(anomalies.actions),
        },
    }


def _global(threshold: Threshold) -> dict[str, Any]:
    """A threshold of the account's cap as the seed writes one: the optional fields only when set."""
    shown: dict[str, Any] = {"percentage": threshold.fraction, "actions": list(threshold.actions)}
    optional = {
        "recipients": threshold.recipients,
        "channels": threshold.channels,
        "urgency": threshold.urgency,
        "message": threshold.message,
    }
    return shown | {name: value for name, value in optional.items() if value is not None}
