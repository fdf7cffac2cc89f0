# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BUILD := build
CODEX_VERSION := 0.169.0
CODEX := .tools/node_modules/.bin/codex
CLAUDE_CODE_VERSION := 2.1.197
CLAUDE := .tools/node_modules/.bin/claude
GEMINI_CLI_VERSION := 0.61.0
GEMINI := .tools/node_modules/.bin/gemini
DEMO_KEY := gp-quickstart-demo-key
PORT ?= 4000

.PHONY: run test compile check schema bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

REDIS_SERVER := /usr/bin/redis-server

# The ledger tests start plain, TLS, Cluster and Sentinel (`redis-server --sentinel`) servers: Debian's
# redis-server 7 has all of them (built with TLS; Cluster's `--cluster-port` is 7.0's).
$(REDIS_SERVER):
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (Debian package) for the ledger tests"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq redis-server >/dev/null; }
	@redis-server --version | grep -Eq ' v=([7-9]|[1-9][0-9])\.' || \
	  echo "warning: the Redis Cluster tests need redis-server 7 or later ($$(redis-server --version))" >&2

CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver

$(CHROMIUM) $(CHROMEDRIVER):
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { \
	  echo "installing chromium and chromium-driver (Debian packages) for the admin dashboard's browser test"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium chromium-driver >/dev/null; }

$(CODEX):
	npm install --prefix .tools --no-audit --no-fund --loglevel=error @openai/codex@$(CODEX_VERSION)

$(CLAUDE):
	npm install --prefix .tools --no-audit --no-fund --loglevel=error @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)

$(GEMINI):
	npm install --prefix .tools --no-audit --no-fund --loglevel=error @google/gemini-cli@$(GEMINI_CLI_VERSION)

run: $(STAMP)
	$(BIN)/policy compile examples/acme -o $(BUILD)/acme.routing-table.json
	@sed -e 's|PORT|$(PORT)|g' -e 's|DEMO_KEY|$(DEMO_KEY)|g' -e 's|CODEX_VERSION|$(CODEX_VERSION)|g' \
	  -e 's|CLAUDE_CODE_VERSION|$(CLAUDE_CODE_VERSION)|g' examples/quickstart/banner.txt
	$(BIN)/policy serve examples/quickstart --host 127.0.0.1 --port $(PORT)

test: $(STAMP) $(CODEX) $(CLAUDE) $(GEMINI) $(REDIS_SERVER) $(CHROMIUM) $(CHROMEDRIVER)
	$(BIN)/ruff check .
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
