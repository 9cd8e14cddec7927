"""`farebox prices show|quote`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from farebox.cli.prices import app

OVERRIDES = """
[aliases]
"my-fast-model" = "openai/gpt-4o-mini"

[[prices]]
model = "gpt-4o"
discount = "0.20"
effective_from = 2025-01-01

[[prices]]
model = "vm-small"
operation = "compute.vm.running"
per_hour = "0.05"
"""


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def run_json(*args: str, env: dict[str, str] | None = None) -> Any:
    result = run(*args, "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def overrides(tmp_path: Path) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(OVERRIDES)
    return path


def test_show_json() -> None:
    shown = run_json("show", "openai/gpt-4o-2024-08-06")
    assert shown == {
        "model": "openai/gpt-4o-2024-08-06",
        "canonical_model": "gpt-4o",
        "provider": "openai",
        "source": "catalog",
        "override": None,
        "unit_prices": {"input_mtok": "2.5", "cached_input_mtok": "1.25", "output_mtok": "10"},
    }


def test_show_table_with_tiers() -> None:
    result = run("show", "claude-sonnet-4-5", "--provider", "anthropic")
    assert result.exit_code == 0, result.output
    assert "canonical model claude-sonnet-4-5" in result.stdout
    assert "provider anthropic" in result.stdout
    assert "source catalog" in result.stdout
    assert "input, per 1M tokens, when input > 200,000 tokens" in result.stdout
    assert "22.5" in result.stdout


def test_quote_json_gpt_4o() -> None:
    quoted = run_json("quote", "gpt-4o", "--input", "1000", "--output", "100")
    assert quoted["cost_usd"] == "0.0035"
    assert quoted["cost_nano"] == 3_500_000
    assert quoted["exact_cost_usd"] == "0.0035"
    assert quoted["unit_prices"] == {"input_mtok": "2.5", "cached_input_mtok": "1.25", "output_mtok": "10"}
    assert quoted["usage"]["input_tokens"] == 1000
    assert quoted["usage"]["seconds"] == "0"


def test_quote_table() -> None:
    result = run("quote", "gpt-4o", "--input", "1000", "--cached", "400", "--output", "100")
    assert result.exit_code == 0, result.output
    assert "charged at" in result.stdout
    assert "cost: 0.003 USD (exact 0.003)" in result.stdout


@pytest.mark.parametrize(
    ("args", "cost"),
    [
        (["tts-1", "--characters", "1000"], "0.015"),
        (["whisper-1", "--seconds", "60"], "0.006"),
        (["claude-sonnet-4-5", "--input", "200001", "--cache-write", "1", "--output", "1000"], "1.2225075"),
        (["gpt-4o", "--output", "100", "--reasoning", "80"], "0.001"),
    ],
)
def test_quote_other_units(args: list[str], cost: str) -> None:
    assert run_json("quote", *args)["cost_usd"] == cost


def test_overrides_from_option_and_environment(overrides: Path) -> None:
    by_option = run_json("quote", "gpt-4o", "--input", "1000", "--output", "100", "--overrides", str(overrides))
    by_env = run_json(
        "quote", "gpt-4o", "--input", "1000", "--output", "100", env={"FAREBOX_PRICE_OVERRIDES": str(overrides)}
    )
    assert by_option == by_env
    assert by_option["cost_usd"] == "0.0028"
    assert by_option["source"] == "catalog+override"
    assert by_option["override"] == 'prices[0] (model "gpt-4o", effective_from 2025-01-01T00:00:00+00:00)'


def test_price_at_a_time_before_an_override(overrides: Path) -> None:
    quoted = run_json(
        "quote",
        "gpt-4o",
        "--input",
        "1000",
        "--output",
        "100",
        "--at",
        "2024-12-31T23:00:00Z",
        "--overrides",
        str(overrides),
    )
    assert (quoted["cost_usd"], quoted["source"]) == ("0.0035", "catalog")


def test_alias_and_meter(overrides: Path) -> None:
    aliased = run_json("show", "my-fast-model", "--overrides", str(overrides))
    assert (aliased["canonical_model"], aliased["provider"]) == ("gpt-4o-mini", "openai")
    vm = run_json(
        "quote", "vm-small", "--operation", "compute.vm.running", "--seconds", "1800", "--overrides", str(overrides)
    )
    assert (vm["cost_usd"], vm["source"], vm["provider"]) == ("0.025", "override", "")
    result = run("show", "vm-small", "--operation", "compute.vm.running", "--overrides", str(overrides))
    assert result.exit_code == 0, result.output
    assert "per hour" in result.stdout
    assert "provider -" in result.stdout


@pytest.mark.parametrize("command", [["show", "no-such-model"], ["quote", "no-such-model", "--input", "1"]])
def test_unknown_model_is_one_line_and_exit_1(command: list[str]) -> None:
    result = run(*command)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        result.stderr.strip()
        == "error: unknown model 'no-such-model': not in the price catalog nor in the overrides file"
    )


@pytest.mark.parametrize("command", [["show", "no-such-model"], ["quote", "no-such-model", "--input", "1"]])
def test_unknown_model_with_json_is_a_json_error(command: list[str]) -> None:
    result = run(*command, "--json")
    assert (result.exit_code, result.stdout) == (1, "")
    assert json.loads(result.stderr) == {
        "error": {
            "code": "unknown_model",
            "message": "unknown model 'no-such-model': not in the price catalog nor in the overrides file",
        }
    }


def test_a_json_after_double_dash_is_a_word_not_the_option() -> None:
    result = run("show", "--", "--json")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown model '--json'")


def test_bad_overrides_file_with_json_is_a_json_error_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[prices]]\nmodel = "x"\nper_hour = 0.5\n')
    result = run("show", "gpt-4o", "--overrides", str(path), "--json")
    assert (result.exit_code, result.stdout) == (2, "")
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "invalid_price_overrides" and 'prices[0] (model "x").per_hour' in error["message"]


def test_bad_usage_with_json_is_a_json_usage_error() -> None:
    for args in (["--seconds", "abc"], ["--input", "10", "--cached", "20"]):
        result = run("quote", "gpt-4o", *args, "--json")
        assert (result.exit_code, result.stdout) == (2, ""), result.output
        assert json.loads(result.stderr)["error"]["code"] == "usage_error"


def test_bad_overrides_file_exits_2_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[prices]]\nmodel = "x"\nper_hour = 0.5\n')
    result = run("show", "gpt-4o", "--overrides", str(path))
    assert result.exit_code == 2
    assert str(path) in result.stderr
    assert 'prices[0] (model "x").per_hour' in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seconds", "abc"], "not a decimal number"),
        (["--seconds", "-1"], "not negative"),
        (["--seconds", "Infinity"], "finite"),
        (["--input", "-1"], "greater than or equal to 0"),
        (["--at", "yesterday"], "not an ISO 8601 date-time"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    result = run("quote", "gpt-4o", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_inconsistent_usage_exits_2() -> None:
    result = run("quote", "gpt-4o", "--input", "10", "--cached", "20")
    assert result.exit_code == 2
    assert "cannot exceed input_tokens" in result.stderr


def test_help_lists_both_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "show" in result.stdout
    assert "quote" in result.stdout


def test_overrides_from_farebox_toml_like_serve(
    overrides: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAREBOX_PRICE_OVERRIDES", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "farebox.toml").write_text(f"price_overrides = {str(overrides)!r}\n")
    assert run_json("quote", "gpt-4o", "--input", "1000", "--output", "100")["cost_usd"] == "0.0028"
