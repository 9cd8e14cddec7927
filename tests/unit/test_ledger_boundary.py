"""Only the ledger runs queries: no module outside `farebox.ledger` calls the Ledger's `_read`/`_write` plumbing.

Import-linter keeps SQLAlchemy and `farebox.ledger.schema` out of every other package ("only the ledger
touches the database"); this closes the other way in, a callable of a connection handed to the plumbing.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src" / "farebox"
PLUMBING = frozenset({"_read", "_write"})


def _plumbing_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{path.relative_to(SOURCE.parent)}:{node.lineno} .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in PLUMBING
    ]


def test_nothing_outside_the_ledger_reaches_its_read_and_write_plumbing() -> None:
    outside = [path for path in SOURCE.rglob("*.py") if SOURCE / "ledger" not in path.parents]
    assert len(outside) > 50, "the source tree was not found"
    assert [call for path in sorted(outside) for call in _plumbing_calls(path)] == []


def test_the_ledger_itself_runs_its_queries_through_the_plumbing() -> None:
    # The check above would pass vacuously if the plumbing were renamed: it is still what the ledger uses.
    inside = [call for path in sorted((SOURCE / "ledger").rglob("*.py")) for call in _plumbing_calls(path)]
    assert any(call.endswith("._read") for call in inside) and any(call.endswith("._write") for call in inside)
