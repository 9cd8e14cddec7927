"""Interleaved A/B figures from one `run_bench.py` run: per round, farebox against a baseline build of itself.

Absolute figures drift here from minute to minute; two builds measured in the same rounds, target order
alternating, drift together. So the comparison is the ratio within each round, and its median and range
across rounds. Used by `bench/proxy.py --baseline SRC`.
"""

from __future__ import annotations

from statistics import median
from typing import Any

__all__ = ["ab_lines"]


def ab_lines(runs: list[dict[str, Any]], *, a: str = "farebox", b: str = "baseline") -> list[str]:
    """One line per (mode, concurrency): per-round req/s ratios a/b, and added p50 of each (vs direct)."""
    cells: dict[tuple[str, int], dict[int, dict[str, dict[str, Any]]]] = {}
    for run in runs:
        key = (run["mode"], run["concurrency"])
        cells.setdefault(key, {}).setdefault(run["repeat"], {})[run["target"]] = run
    lines = []
    for (mode, conc), rounds in sorted(cells.items()):
        ratios, added_a, added_b = [], [], []
        for by_target in rounds.values():
            if a in by_target and b in by_target and by_target[b]["rps"]:
                ratios.append(by_target[a]["rps"] / by_target[b]["rps"])
                direct = by_target.get("direct")
                if direct is not None:
                    added_a.append(by_target[a]["p50_ms"] - direct["p50_ms"])
                    added_b.append(by_target[b]["p50_ms"] - direct["p50_ms"])
        if not ratios:
            continue
        line = (
            f"  {mode:<9} c={conc:<3} req/s {a}/{b}: median {median(ratios):.3f} "
            f"(rounds {', '.join(f'{r:.3f}' for r in ratios)})"
        )
        if added_a:
            line += f"; added p50 {median(added_a):.3f} vs {median(added_b):.3f} ms"
        lines.append(line)
    return lines
