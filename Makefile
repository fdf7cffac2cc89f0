# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BUILD := build

.PHONY: run test compile check schema bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/policy compile examples/acme -o $(BUILD)/acme.routing-table.json

test: $(STAMP)
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

check: $(STAMP)
	$(BIN)/policy compile examples/acme --check --strict

schema: $(STAMP)
	$(BIN)/policy schema

bench: $(STAMP)
	$(BIN)/python bench/compile.py

clean:
	rm -rf $(VENV) $(BUILD) .pytest_cache
