"""The local price overrides file: negotiated rates, custom models, non-LLM meters and aliases.

The file is TOML::

    # Another name for a catalog model: priced, and reported, as that model.
    [aliases]
    "my-fast-model" = "openai/gpt-4o-mini"

    # A negotiated rate: 20% off the catalog's gpt-4o prices from 1 March 2025.
    [[prices]]
    model = "gpt-4o"
    discount = "0.20"
    effective_from = 2025-03-01

    # A non-LLM meter: one model, one price per operation.
    [[prices]]
    model = "vm-small"
    provider = "mycloud"
    operation = "compute.vm.running"
    per_hour = "0.05"

    # A custom model with a tiered input price (cliff tiers, as genai-prices).
    [[prices]]
    model = "my-llm"
    input_mtok = { base = "3", tiers = [{ start = 200000, price = "6" }] }
    output_mtok = "15"

Each `[[prices]]` entry has a `model` (required), and optionally a `provider`, an `operation` and
an `effective_from` (a TOML date, taken as midnight UTC, or a date-time; a date-time without an
offset is UTC). Unknown keys are refused. Prices are USD: `input_mtok`,
`cached_input_mtok`, `cache_write_mtok`, `output_mtok` (per million tokens, flat or tiered),
`per_mchars` (per million characters), `per_hour` (per hour of seconds), `per_unit` (per unit of
quantity), and `discount` (a fraction from 0 to 1 taken off the total). Amounts are decimal strings
or integers; TOML floats are refused, because `2.1` in binary is not 2.1.

Entries are matched on the canonical model: `PriceBook` maps each entry's model through the catalog
as it does an event's (`gpt-4o-2024-08-06` -> `gpt-4o`), and a `provider/model` name splits into
provider and model when the prefix is a catalog provider or the `provider` of some entry.

Which entry applies to an event (model, provider, operation, time): among the entries for its model
whose provider and operation are unset or equal to the event's (an event with no known provider
matches any provider) and whose `effective_from` is unset or not after the event, the most specific
one (operation set, then provider set) with the latest `effective_from`; on a tie, the first in the
file. Fields the entry sets replace the catalog's; fields it leaves out keep the catalog's, so an
entry with only a `discount` is a negotiated rate on catalog prices.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from farebox.core.pricing import TieredPrice, TokenPrice, UnitPrices

__all__ = ["OverrideEntry", "PriceOverrides", "PriceOverridesError"]


class PriceOverridesError(ValueError):
    """The overrides file cannot be used; the message names the file and the bad entry."""


@dataclass(frozen=True, slots=True)
class OverrideEntry:
    """One `[[prices]]` entry of the overrides file."""

    index: int
    """Position in the file's `prices` list, for error messages (`prices[index]`)."""
    model: str
    provider: str | None
    operation: str | None
    effective_from: datetime | None
    """Aware UTC; None means always."""
    prices: UnitPrices
    """The prices this entry sets; None fields (and a None `discount`) keep the catalog's."""
    discount: Decimal | None

    def applied_to(self, base: UnitPrices) -> UnitPrices:
        """`base` with this entry's prices and discount laid over it."""
        p = self.prices
        return UnitPrices(
            input_mtok=p.input_mtok if p.input_mtok is not None else base.input_mtok,
            cached_input_mtok=p.cached_input_mtok if p.cached_input_mtok is not None else base.cached_input_mtok,
            cache_write_mtok=p.cache_write_mtok if p.cache_write_mtok is not None else base.cache_write_mtok,
            output_mtok=p.output_mtok if p.output_mtok is not None else base.output_mtok,
            per_mchars=p.per_mchars if p.per_mchars is not None else base.per_mchars,
            per_hour=p.per_hour if p.per_hour is not None else base.per_hour,
            per_unit=p.per_unit if p.per_unit is not None else base.per_unit,
            discount=self.discount if self.discount is not None else base.discount,
        )

    def describe(self) -> str:
        """`prices[2] (model "vm-small", operation "compute.vm.running")`, for error messages."""
        parts = [f'model "{self.model}"']
        if self.provider is not None:
            parts.append(f'provider "{self.provider}"')
        if self.operation is not None:
            parts.append(f'operation "{self.operation}"')
        if self.effective_from is not None:
            parts.append(f"effective_from {self.effective_from.isoformat()}")
        return f"prices[{self.index}] ({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class PriceOverrides:
    """A parsed, validated overrides file."""

    entries: tuple[OverrideEntry, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Alias -> target model (`provider/model` or a model name), as written."""
    source: str = "<none>"
    """Where the entries came from (the file path), for error messages."""

    @classmethod
    def load(cls, path: Path) -> PriceOverrides:
        """Read and validate an overrides file.

        Raises:
            PriceOverridesError: the file cannot be read, is not TOML, or has a bad entry.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PriceOverridesError(f"{path}: cannot read the price overrides file: {exc.strerror}") from None
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, *, source: str) -> PriceOverrides:
        """Validate the TOML text of an overrides file; `source` names it in errors.

        Raises:
            PriceOverridesError: the text is not TOML or has a bad entry.
        """
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PriceOverridesError(f"{source}: not valid TOML: {exc}") from None
        try:
            parsed = _File.model_validate(raw)
        except ValidationError as exc:
            raise PriceOverridesError(f"{source}: {_first_error(exc, raw)}") from None
        entries = tuple(_entry(i, model) for i, model in enumerate(parsed.prices))
        overrides = cls(entries=entries, aliases=MappingProxyType(dict(parsed.aliases)), source=source)
        overrides.check()
        return overrides

    def check(self) -> None:
        """Refuse aliases of aliases and two entries for the same model, provider, operation and date.

        Raises:
            PriceOverridesError: naming the source and the entries.
        """
        for alias, target in self.aliases.items():
            if target in self.aliases:
                raise PriceOverridesError(
                    f'{self.source}: aliases."{alias}": its target "{target}" is itself an alias; name the model'
                )
        seen: dict[tuple[str, str | None, str | None, datetime | None], OverrideEntry] = {}
        for entry in self.entries:
            key = (entry.model, entry.provider, entry.operation, entry.effective_from)
            if (first := seen.setdefault(key, entry)) is not entry:
                raise PriceOverridesError(
                    f"{self.source}: {entry.describe()} repeats {first.describe()}; give one an effective_from"
                )

    def select(self, *, model: str, provider: str, operation: str, at: datetime) -> OverrideEntry | None:
        """The entry that applies to an event, or None (see the module docstring for the rule)."""
        best: OverrideEntry | None = None
        best_rank: tuple[bool, bool, datetime] | None = None
        for entry in self.entries:
            if entry.model != model:
                continue
            if entry.provider is not None and provider and entry.provider != provider:
                continue
            if entry.operation is not None and entry.operation != operation:
                continue
            if entry.effective_from is not None and entry.effective_from > at:
                continue
            rank = (entry.operation is not None, entry.provider is not None, entry.effective_from or _ALWAYS)
            if best_rank is None or rank > best_rank:
                best, best_rank = entry, rank
        return best

    def changes_on(self, *, model: str, day: date) -> tuple[datetime, ...]:
        """Instants strictly inside UTC `day` at which an entry for `model` takes effect, sorted."""
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return tuple(
            sorted(
                {
                    entry.effective_from
                    for entry in self.entries
                    if entry.model == model
                    and entry.effective_from is not None
                    and entry.effective_from.date() == day
                    and entry.effective_from != start
                }
            )
        )


_ALWAYS = datetime(1, 1, 1, tzinfo=UTC)
_TOKEN_FIELDS = ("input_mtok", "cached_input_mtok", "cache_write_mtok", "output_mtok")
_FLAT_FIELDS = ("per_mchars", "per_hour", "per_unit")


def _amount(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(f'write amounts as decimal strings ("{value}"), not TOML floats, so they stay exact')
    if isinstance(value, bool):
        raise ValueError("an amount is a decimal string, not a boolean")
    if isinstance(value, str):
        return value.strip()
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class _Tier(_Strict):
    start: Annotated[int, Field(ge=0, strict=True)]
    price: _Amount

    exact_amounts = field_validator("price", mode="before")(_amount)


class _Tiered(_Strict):
    base: _Amount
    tiers: Annotated[list[_Tier], Field(min_length=1)]

    exact_amounts = field_validator("base", mode="before")(_amount)


def _shape(value: Any) -> str:
    return "tiered" if isinstance(value, dict) else "flat"


_TokenAmount = Annotated[
    Annotated[_Amount, Tag("flat")] | Annotated[_Tiered, Tag("tiered")],
    Discriminator(_shape),
]


class _Entry(_Strict):
    model: Annotated[str, Field(min_length=1)]
    provider: Annotated[str, Field(min_length=1)] | None = None
    operation: Annotated[str, Field(min_length=1)] | None = None
    effective_from: datetime | None = None
    input_mtok: _TokenAmount | None = None
    cached_input_mtok: _TokenAmount | None = None
    cache_write_mtok: _TokenAmount | None = None
    output_mtok: _TokenAmount | None = None
    per_mchars: _Amount | None = None
    per_hour: _Amount | None = None
    per_unit: _Amount | None = None
    discount: Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)] | None = None

    exact_amounts = field_validator(*_TOKEN_FIELDS, *_FLAT_FIELDS, "discount", mode="before")(_amount)

    @field_validator("effective_from", mode="before")
    @classmethod
    def utc_instant(cls, value: object) -> object:
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if isinstance(value, str):
            try:
                return cls.utc_instant(datetime.fromisoformat(value))
            except ValueError:
                pass
        raise ValueError("effective_from must be a TOML date (2025-03-01) or date-time (2025-03-01T12:00:00Z)")

    @model_validator(mode="after")
    def sets_a_price(self) -> _Entry:
        if all(getattr(self, name) is None for name in (*_TOKEN_FIELDS, *_FLAT_FIELDS, "discount")):
            raise ValueError("sets no price: give at least one of " + ", ".join((*_TOKEN_FIELDS, *_FLAT_FIELDS)))
        return self


class _File(_Strict):
    aliases: dict[Annotated[str, Field(min_length=1)], Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict
    )
    prices: list[_Entry] = Field(default_factory=list)


def _entry(index: int, raw: _Entry) -> OverrideEntry:
    return OverrideEntry(
        index=index,
        model=raw.model,
        provider=raw.provider,
        operation=raw.operation,
        effective_from=raw.effective_from,
        prices=UnitPrices(
            input_mtok=_token(raw.input_mtok),
            cached_input_mtok=_token(raw.cached_input_mtok),
            cache_write_mtok=_token(raw.cache_write_mtok),
            output_mtok=_token(raw.output_mtok),
            per_mchars=raw.per_mchars,
            per_hour=raw.per_hour,
            per_unit=raw.per_unit,
        ),
        discount=raw.discount,
    )


def _token(value: Decimal | _Tiered | None) -> TokenPrice | None:
    if isinstance(value, _Tiered):
        tiers = sorted((tier.start, tier.price) for tier in value.tiers)
        return TieredPrice(base=value.base, tiers=tuple(tiers))
    return value


def _first_error(exc: ValidationError, raw: Mapping[str, Any]) -> str:
    errors = exc.errors()
    error = errors[0]
    loc = [part for part in error["loc"] if part not in ("flat", "tiered")]
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    if len(loc) >= 2 and loc[0] == "prices" and isinstance(loc[1], int):
        entry = raw["prices"][loc[1]]
        if isinstance(entry, dict) and isinstance(entry.get("model"), str) and entry["model"]:
            head = f'prices[{loc[1]}] (model "{entry["model"]}")'
            where = head + where.removeprefix(f"prices[{loc[1]}]")
    message = str(error["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'file'}: {message}{more}"
