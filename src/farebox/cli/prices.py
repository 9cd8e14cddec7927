"""`farebox prices show|quote`: what a model costs, from the catalog and the overrides file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from farebox.cli.output import Json, command_group
from farebox.cli.runtime import console, fail, load_or_exit, print_json
from farebox.core.money import format_usd
from farebox.core.pricing import Usage
from farebox.prices import ModelPricing, PriceBook, PriceOverridesError, UnknownModelError

__all__ = ["app", "quote", "show"]

T = TypeVar("T")
app = command_group(help="Unit prices and cost quotes from the price catalog and overrides.")

_LABELS = {
    "input_mtok": "input, per 1M tokens",
    "cached_input_mtok": "cached input, per 1M tokens",
    "cache_write_mtok": "cache write, per 1M tokens",
    "output_mtok": "output, per 1M tokens",
    "per_mchars": "per 1M characters",
    "per_hour": "per hour",
    "per_unit": "per unit",
    "discount": "discount (fraction off)",
}


def _decimal(value: str | Decimal) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise typer.BadParameter(f"not a decimal number: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise typer.BadParameter(f"must be a finite number, not negative: {value!r}")
    return number


def _instant(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date-time: {value!r}") from None


ModelArg = Annotated[str, typer.Argument(help="Model name, `provider/model`, or an alias from the overrides file.")]
ProviderOpt = Annotated[str | None, typer.Option("--provider", help="Provider id (default: from the model name).")]
OperationOpt = Annotated[
    str, typer.Option("--operation", help="Operation, for meters priced per operation (compute.vm.running).")
]
AtOpt = Annotated[
    datetime | None,
    typer.Option("--at", parser=_instant, metavar="DATETIME", help="Price at this ISO time (default: now, UTC)."),
]
OverridesOpt = Annotated[
    Path | None,
    typer.Option(
        "--overrides",
        dir_okay=False,
        help="Price overrides TOML file (default: the price_overrides setting, as `farebox serve` uses).",
    ),
]


@app.command()
def show(
    model: ModelArg,
    provider: ProviderOpt = None,
    operation: OperationOpt = "",
    at: AtOpt = None,
    as_json: Json = False,
    overrides: OverridesOpt = None,
) -> None:
    """Show a model's unit prices (USD), its provider and canonical model, and where the prices come from."""
    pricing = _or_fail(model, lambda book: book.show(model, provider=provider, operation=operation, at=at), overrides)
    prices = pricing.prices.as_dict()
    if as_json:
        print_json({**_identity(model, pricing), "unit_prices": prices})
        return
    console.print(_heading(model, pricing), highlight=False, soft_wrap=True)
    console.print(_price_table(prices))


@app.command()
def quote(
    model: ModelArg,
    input_tokens: Annotated[int, typer.Option("--input", min=0, help="Input tokens, cache included.")] = 0,
    output_tokens: Annotated[int, typer.Option("--output", min=0, help="Output tokens, reasoning included.")] = 0,
    cached: Annotated[int, typer.Option("--cached", min=0, help="Input tokens read from cache.")] = 0,
    cache_write: Annotated[int, typer.Option("--cache-write", min=0, help="Input tokens written to cache.")] = 0,
    reasoning: Annotated[int, typer.Option("--reasoning", min=0, help="Output tokens spent reasoning.")] = 0,
    characters: Annotated[int, typer.Option("--characters", min=0, help="Characters (text-to-speech).")] = 0,
    seconds: Annotated[
        Decimal, typer.Option("--seconds", parser=_decimal, metavar="SECONDS", help="Duration in seconds.")
    ] = Decimal(0),
    quantity: Annotated[
        Decimal, typer.Option("--quantity", parser=_decimal, metavar="UNITS", help="Units, for per-unit meters.")
    ] = Decimal(0),
    provider: ProviderOpt = None,
    operation: OperationOpt = "",
    at: AtOpt = None,
    as_json: Json = False,
    overrides: OverridesOpt = None,
) -> None:
    """Quote the exact cost (USD) of one request's usage."""
    try:
        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
            characters=characters,
            seconds=seconds,
            quantity=quantity,
        )
    except ValueError as exc:
        fail(str(exc), code="usage_error", exit_code=2)
    result = _or_fail(
        model,
        lambda book: book.quote(model, usage=usage, provider=provider, operation=operation, at=at),
        overrides,
    )
    if as_json:
        print_json(
            {
                **_identity(model, result.pricing),
                "usage": {name: _plain(getattr(usage, name)) for name in Usage.__dataclass_fields__},
                "unit_prices": result.unit_prices,
                "cost_usd": format_usd(result.cost_nano),
                "cost_nano": result.cost_nano,
                "exact_cost_usd": _plain(result.cost),
            }
        )
        return
    console.print(_heading(model, result.pricing), highlight=False, soft_wrap=True)
    console.print(_price_table(result.unit_prices, title="charged at"))
    console.print(f"cost: [bold]{format_usd(result.cost_nano)}[/] USD (exact {_plain(result.cost)})", highlight=False)


def _or_fail(model: str, ask: Callable[[PriceBook], T], overrides: Path | None) -> T:
    """Run `ask(book)`; a bad overrides file or an unknown model becomes one line on stderr."""
    try:
        book = PriceBook.load(overrides or load_or_exit().price_overrides)
    except PriceOverridesError as exc:
        fail(str(exc), code="invalid_price_overrides", exit_code=2)
    try:
        return ask(book)
    except UnknownModelError:
        fail(f"unknown model {model!r}: not in the price catalog nor in the overrides file", code="unknown_model")


def _identity(model: str, pricing: ModelPricing) -> dict[str, Any]:
    return {
        "model": model,
        "canonical_model": pricing.canonical_model,
        "provider": pricing.provider,
        "source": pricing.source,
        "override": pricing.override,
    }


def _heading(model: str, pricing: ModelPricing) -> str:
    via = f" via {pricing.override}" if pricing.override else ""
    return (
        f"[bold]{model}[/] -> canonical model [bold]{pricing.canonical_model}[/], "
        f"provider [bold]{pricing.provider or '-'}[/], source {pricing.source}{via}"
    )


def _price_table(prices: dict[str, str], *, title: str = "unit prices") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("unit")
    table.add_column("USD", justify="right")
    for key, value in prices.items():
        name, _, start = key.partition(">")
        label = _LABELS.get(name, name)
        if start:
            label += f", when input > {int(start):,} tokens"
        table.add_row(label, value)
    return table


def _plain(value: int | Decimal) -> int | str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else value
