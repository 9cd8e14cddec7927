"""cli.output: USD amounts typed on the command line are exact or a usage error; records print as a table, or
with `--json` as the JSON the admin API answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import typer
from pydantic import BaseModel

from farebox.cli.output import cell, show_one, show_table, usd_option


class Row(BaseModel):
    id: str
    name: str
    cap: Decimal | None
    models: list[str] | None
    created_at: datetime


ROWS = [
    Row(
        id="key_1",
        name="ci",
        cap=Decimal("75.00"),
        models=["gpt-4o", "claude-sonnet-4-5"],
        created_at=datetime(2025, 3, 1, tzinfo=UTC),
    ),
    Row(id="key_2", name="batch", cap=None, models=None, created_at=datetime(2025, 3, 2, 12, tzinfo=UTC)),
]


@pytest.mark.parametrize(
    ("text", "nano"),
    [("75.00", 75_000_000_000), ("0.000000001", 1), (" 12 ", 12_000_000_000), ("1e3", 1000 * 10**9), ("0", 0)],
)
def test_usd_option_reads_exact_amounts(text: str, nano: int) -> None:
    assert usd_option(text) == nano


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ten", "not a decimal amount: 'ten'"),
        ("0.0000000001", "more precise than one nano-USD (9 decimal places): '0.0000000001'"),
        ("NaN", "not a finite amount: 'NaN'"),
        ("", "not a decimal amount: ''"),
    ],
)
def test_a_bad_amount_is_a_usage_error_saying_why(text: str, message: str) -> None:
    with pytest.raises(typer.BadParameter) as caught:
        usd_option(text)
    assert str(caught.value) == message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__, "no chained traceback"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        ([], "-"),
        (["a"], "a"),
        (["a", "b", 3], "a, b, 3"),
        ("", ""),
        ("x", "x"),
        (0, "0"),
        (False, "False"),
        ("75.00", "75.00"),
        ({"k": 1}, "{'k': 1}"),
    ],
)
def test_cell(value: object, text: str) -> None:
    assert cell(value) == text


def test_show_one_as_json_is_the_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    show_one(ROWS[0], as_json=True)
    out = capsys.readouterr().out
    assert json.loads(out) == {
        "id": "key_1",
        "name": "ci",
        "cap": "75.00",  # Decimal as an exact string, never a float
        "models": ["gpt-4o", "claude-sonnet-4-5"],
        "created_at": "2025-03-01T00:00:00Z",
    }
    assert out.startswith("{\n  "), "indented for people reading it"


def test_show_table_as_json_is_a_list_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    show_table(ROWS, ["id", "name"], as_json=True, title="Keys")
    rows = json.loads(capsys.readouterr().out)
    assert [row["id"] for row in rows] == ["key_1", "key_2"]
    assert rows[1] == {
        "id": "key_2",
        "name": "batch",
        "cap": None,
        "models": None,
        "created_at": "2025-03-02T12:00:00Z",
    }


def test_show_table_as_json_of_nothing_is_an_empty_list(capsys: pytest.CaptureFixture[str]) -> None:
    show_table([], ["id"], as_json=True, title="Keys")
    assert json.loads(capsys.readouterr().out) == []


def test_show_one_as_a_table_lists_every_field_with_cells(capsys: pytest.CaptureFixture[str]) -> None:
    show_one(ROWS[1], as_json=False)
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines == [
        ["id", "key_2"],
        ["name", "batch"],
        ["cap", "-"],
        ["models", "-"],
        ["created_at", "2025-03-02T12:00:00Z"],
    ]


def test_show_table_prints_only_the_columns_asked_for_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    show_table(ROWS, ["name", "models"], as_json=False, title="Virtual keys")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].strip() == "Virtual keys"
    cells = [[part.strip() for part in line.split("│")[1:-1]] for line in lines if line.count("│") == 3]
    assert cells == [["ci", "gpt-4o, claude-sonnet-4-5"], ["batch", "-"]]
    header = next(line for line in lines if "name" in line)
    assert header.split() == ["┃", "name", "┃", "models", "┃"]


def test_show_table_of_an_unknown_column_fails_loudly() -> None:
    with pytest.raises(KeyError):
        show_table(ROWS, ["colour"], as_json=False, title="Keys")
