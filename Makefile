# farebox — `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

.PHONY: help install lock vendor run test testcov format lint typecheck all

help: ## show this help
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install farebox with its pinned dependencies

lock: ## re-pin requirements.lock from pyproject.toml (uv, installed from PyPI)
	test -x $(BIN)/uv || $(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -q -o requirements.lock

vendor: ## refresh the dashboard's front-end libraries from the npm registry (pinned in the script)
	bash scripts/vendor-frontend.sh

run: $(STAMP) ## start the gateway on 127.0.0.1:4000 with the SQLite ledger
	$(BIN)/farebox serve

test: $(STAMP) ## run the whole test suite (PostgreSQL too when TEST_PG_URL is set)
	$(BIN)/pytest -q

testcov: $(STAMP) ## tests with branch coverage
	$(BIN)/coverage run -m pytest -q && $(BIN)/coverage report

format: $(STAMP) ## format the code
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

lint: $(STAMP) ## ruff and the import-layer contracts
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

all: lint typecheck test ## everything CI runs
