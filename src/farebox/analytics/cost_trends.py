"""Cost trends of a period: the models and operations whose cost rose or fell from its first half to its second.

The period's slots (local days, or clock hours) are cut into two halves of equal length, the middle slot of an
odd count left out. A category, a canonical model or an operation, is listed when its cost in the second half
differs from the first half's by at least `MIN_CHANGE` of the first half's, or when it is new. `increasing` gives
its `growthRate` (a fraction; null for a category the first half did not have) and `projectedMonthlyCost` (the
second half's cost per day, times 30); `decreasing` its `reductionRate` and `savings` (the first half's cost less
the second's). Each list by the size of the change, largest first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from farebox.analytics.admin_common import NANO, ratio, usd
from farebox.analytics.cost_advice import UsageGroup

__all__ = ["MIN_CHANGE", "cost_trends"]

MIN_CHANGE = Decimal("0.1")
_MONTH_DAYS = 30


def _category(dimension: str, name: str) -> dict[str, str]:
    """The seed's category name (`gpt-4o_usage` for a model, the operation's own name), and what it is."""
    return {"category": f"{name}_usage" if dimension == "model" else name, "type": dimension, "name": name}


def cost_trends(groups: Iterable[UsageGroup], slots: int, *, hours: bool) -> dict[str, list[dict[str, Any]]]:
    """`increasing` and `decreasing` of a period of `slots` days (or, with `hours`, hours)."""
    half = slots // 2
    halves: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for group in groups:
        if group.slot < half:
            side = 0
        elif group.slot >= slots - half:
            side = 1
        else:
            continue
        halves[("model", group.model)][side] += group.cost_nano
        halves[("operation", group.operation)][side] += group.cost_nano
    half_days = Decimal(half) / 24 if hours else Decimal(half)
    increasing: list[dict[str, Any]] = []
    decreasing: list[dict[str, Any]] = []
    for (dimension, name), (before, after) in sorted(
        halves.items(), key=lambda item: (-abs(item[1][1] - item[1][0]), item[0])
    ):
        change = after - before
        if abs(change) < MIN_CHANGE * before or not change:
            continue
        shown = {**_category(dimension, name), "previousCost": usd(before), "currentCost": usd(after)}
        if change > 0:
            monthly = ratio(usd(after) * _MONTH_DAYS, half_days, NANO)
            increasing.append({**shown, "growthRate": ratio(change, before), "projectedMonthlyCost": monthly})
        else:
            decreasing.append({**shown, "reductionRate": ratio(-change, before), "savings": usd(-change)})
    return {"increasing": increasing, "decreasing": decreasing}
