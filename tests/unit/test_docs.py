"""Every setting, route and CLI command is documented in docs/ (STYLE R8, R31).

Each check looks for the item where a reader looks for it, not anywhere in the file: a setting's row
in the settings table of docs/configuration.md, a route's own heading in docs/api.md, a command's own
heading (with its options and arguments in that section) in docs/cli.md. Removing the line that
documents an item fails here, and so does documenting an item the code no longer has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from starlette.routing import BaseRoute, Mount, Route

import farebox.cli
from farebox.app import create_app
from farebox.cli.output import CommandGroup
from farebox.settings import Settings, load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
FASTAPI_PAGES = {"/docs", "/redoc", "/docs/oauth2-redirect"}
"""FastAPI's own browsable pages: not farebox routes."""
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$")
_ROUTE_HEADING = re.compile(r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) /\S*$")


def _prose_lines(doc: str) -> Iterator[str]:
    """The lines of a Markdown file outside fenced code blocks (where `# comment` is no heading)."""
    fenced = False
    for line in (DOCS / doc).read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def _sections(doc: str) -> dict[str, str]:
    """Heading text (without `#` and backticks) -> the prose up to the next heading of any level."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in _prose_lines(doc):
        if match := _HEADING.match(line):
            current = sections.setdefault(match.group(1).replace("`", ""), [])
        else:
            current.append(line)
    return {heading: "\n".join(lines) for heading, lines in sections.items()}


def _mentions(text: str, word: str) -> bool:
    """Whether `word` occurs in `text` as a whole token (`--cap` is not in `--cap-period`)."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


# Settings: docs/configuration.md


def _setting_rows() -> dict[str, str]:
    """`FAREBOX_X` -> its row in the settings table of docs/configuration.md."""
    rows: dict[str, str] = {}
    for line in _prose_lines("configuration.md"):
        if line.startswith("|"):
            for env in re.findall(r"`(FAREBOX_[A-Z0-9_]+)`", line):
                rows[env] = line
    return rows


def test_every_setting_has_a_row_in_configuration_md() -> None:
    rows = _setting_rows()
    flags = {param.name: param.opts[0] for param in _cli()["farebox serve"].params if param.param_type_name == "option"}
    problems = []
    for name, field in Settings.model_fields.items():
        env = f"FAREBOX_{name.upper()}"
        row = rows.get(env)
        if row is None:
            problems.append(f"{env}: no row in the settings table")
            continue
        if f"`{name}`" not in row:
            problems.append(f"{env}: its row does not give the farebox.toml key `{name}`")
        if field.default is not None and f"`{field.default}`" not in row:
            problems.append(f"{env}: its row does not give the default `{field.default}`")
        if name in flags and f"`{flags[name]}`" not in row:
            problems.append(f"{env}: its row does not give the flag `{flags[name]}`")
    assert not problems, "docs/configuration.md is out of date:\n" + "\n".join(problems)


def test_configuration_md_documents_no_unknown_setting() -> None:
    known = {f"FAREBOX_{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(set(_setting_rows()) - known)
    assert not unknown, "docs/configuration.md has rows for settings that do not exist:\n" + "\n".join(unknown)


# Routes: docs/api.md


def _endpoints(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str]]:
    """(method, path) of every HTTP route, through included routers and mounts; HEAD only if alone."""
    for route in routes:
        effective = getattr(route, "effective_route_contexts", None)
        if callable(effective):  # FastAPI >= 0.16x keeps an included router whole, resolving its routes lazily
            pairs = [(context.methods, context.path) for context in effective()]
        elif isinstance(route, Mount):
            yield from ((method, route.path + path) for method, path in _endpoints(route.routes))
            continue
        elif isinstance(route, Route):
            pairs = [(route.methods, route.path)]
        else:
            raise AssertionError(f"unexpected route type {type(route).__name__}: teach _endpoints about it")
        for methods, path in pairs:
            for method in sorted(methods or ()):
                if method != "HEAD" or methods == {"HEAD"}:
                    yield method, re.sub(r":\w+}", "}", path)  # `{workload_id:path}` is `{workload_id}` to a client


@pytest.fixture
def app_endpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """`METHOD /path` of every route of the app, FastAPI's own pages left out."""
    monkeypatch.chdir(tmp_path)  # no farebox.toml of the developer's
    for name in Settings.model_fields:
        monkeypatch.delenv(f"FAREBOX_{name.upper()}", raising=False)
    monkeypatch.delenv("FAREBOX_CONFIG", raising=False)
    app = create_app(load_settings(database_url=f"sqlite:///{tmp_path / 'docs.db'}"), master_key="x")
    return {f"{method} {path}" for method, path in _endpoints(app.routes) if path not in FASTAPI_PAGES}


def test_every_route_has_a_heading_in_api_md(app_endpoints: set[str]) -> None:
    assert len(app_endpoints) > 10, f"route discovery found too few routes: {sorted(app_endpoints)}"
    missing = sorted(app_endpoints - set(_sections("api.md")))
    assert not missing, "routes without their own heading (### METHOD /path) in docs/api.md:\n" + "\n".join(missing)


def test_api_md_documents_no_unknown_route(app_endpoints: set[str]) -> None:
    documented = {heading for heading in _sections("api.md") if _ROUTE_HEADING.match(heading)}
    unknown = sorted(documented - app_endpoints)
    assert not unknown, "docs/api.md has headings for routes the app does not have:\n" + "\n".join(unknown)


# CLI: docs/cli.md
#
# Typer may vendor its own copy of click (typer 0.29 does), so commands and parameters are recognised
# by what they have, not by click's classes: a group has `commands`, a parameter a `param_type_name`.


def _commands(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}")


def _cli() -> dict[str, Any]:
    """`farebox keys rotate` -> its click command, for the root and every group and command below it."""
    return dict(_commands(typer.main.get_command(farebox.cli.app), "farebox"))


def _documented(command: Any, text: str) -> list[str]:
    """The options and arguments of `command` that `text` does not mention."""
    missing = []
    for param in command.params:
        if param.param_type_name == "option":
            missing += [opt for opt in (*param.opts, *param.secondary_opts) if not _mentions(text, opt)]
        elif param.param_type_name == "argument" and not _mentions(text, param.name.upper()):
            missing.append(param.name.upper())
        elif param.param_type_name not in ("option", "argument"):
            raise AssertionError(f"unexpected parameter kind {param.param_type_name!r}: teach _documented about it")
    return missing


def test_every_command_has_a_section_in_cli_md() -> None:
    commands = _cli()
    assert len(commands) > 15, f"command discovery found too few commands: {sorted(commands)}"
    sections = _sections("cli.md")
    problems = []
    for path, command in commands.items():
        if path == "farebox":  # the root's options belong to the whole page
            text = "\n".join(sections.values())
        elif path not in sections:
            problems.append(f"{path}: no heading '{path}'")
            continue
        else:
            text = sections[path]
        problems += [f"{path}: {item} not in its section" for item in _documented(command, text)]
    assert not problems, "docs/cli.md is out of date:\n" + "\n".join(problems)


def test_cli_md_documents_no_unknown_command_or_option() -> None:
    commands = _cli()
    problems = []
    for heading, text in _sections("cli.md").items():
        if not heading.startswith("farebox "):
            continue
        command = commands.get(heading)
        if command is None:
            problems.append(f"{heading}: no such command")
            continue
        options = {opt for param in command.params for opt in getattr(param, "opts", ())}
        for option in re.findall(r"^\| `(--[\w-]+)`", text, flags=re.MULTILINE):
            if option not in options:
                problems.append(f"{heading}: no option {option}")
    assert not problems, "docs/cli.md documents what the CLI does not have:\n" + "\n".join(problems)


# `--json`: every command that prints a result takes it; the exceptions are few, and docs/cli.md names them.

WITHOUT_JSON = {"farebox serve"}
"""Commands that take no `--json`: `serve` runs until it is stopped and prints where it listens, no result."""


def test_every_command_takes_json_but_the_few_cli_md_names() -> None:
    commands = {path: command for path, command in _cli().items() if not hasattr(command, "commands")}
    assert len(commands) > 15, f"command discovery found too few commands: {sorted(commands)}"
    without = {
        path for path, command in commands.items() if not any("--json" in param.opts for param in command.params)
    }
    assert without == WITHOUT_JSON, (
        "every command that prints a result takes --json; a command that cannot must be named in WITHOUT_JSON "
        f"and in docs/cli.md. Without --json: {sorted(without)}"
    )
    (statement,) = [line for line in _paragraphs("cli.md") if line.startswith("- **`--json`**:")]
    named = re.search(r"every command but (.+?) takes it", statement)
    assert named is not None, f"docs/cli.md does not say which commands take no --json: {statement!r}"
    assert set(re.findall(r"`(farebox [\w -]+)`", named.group(1))) == WITHOUT_JSON, statement


def test_every_command_group_reports_failures_as_json_when_asked() -> None:
    groups = {path: command for path, command in _cli().items() if hasattr(command, "commands")}
    assert {"farebox", "farebox keys", "farebox prices"} <= set(groups)
    plain = sorted(path for path, group in groups.items() if not isinstance(group, CommandGroup))
    assert not plain, f"groups not made by farebox.cli.output.command_group (errors would not be JSON): {plain}"


def _paragraphs(doc: str) -> Iterator[str]:
    """The prose of a Markdown file a paragraph or list item at a time, each joined on one line."""
    current: list[str] = []
    for line in [*_prose_lines(doc), ""]:
        if current and (not line.strip() or line.startswith("- ")):
            yield " ".join(current)
            current = []
        if line.strip():
            current.append(line.strip())
