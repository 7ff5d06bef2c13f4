# The whole set-up on a fresh machine is `make run` and `make test` (README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run dev test lint typecheck unit system-deps clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

## run: create the venv, install, migrate and serve on the embedded defaults (SQLite, sandbox outbox)
run: $(STAMP)
	$(BIN)/mailhook migrate
	$(BIN)/mailhook serve

## dev: like run, restarting the server when a Python file under mailhook/ changes
dev: $(STAMP)
	$(BIN)/mailhook migrate
	$(BIN)/mailhook serve --reload

system-deps:
	bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## test: install everything the tests need (incl. Debian packages), lint, type-check, run the suite
test: system-deps $(STAMP) lint typecheck
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

bench: $(STAMP) system-deps
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
