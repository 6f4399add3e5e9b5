# Two commands for a newcomer: `make up` runs everything, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: up test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

up: $(VENV)/.installed
	$(BIN)/inbound up

# Keen's JavaScript SDK for tests/sdk, from its lock file (Node.js's npm).
SDK_JS := tests/sdk/js
$(SDK_JS)/node_modules/.installed: $(SDK_JS)/package-lock.json
	npm ci --prefix $(SDK_JS) --no-audit --no-fund --loglevel=error
	touch $@

test: $(VENV)/.installed $(SDK_JS)/node_modules/.installed
	$(BIN)/inbound kafka fetch >/dev/null
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -ra --durations=15 -p no:cacheprovider

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV)
