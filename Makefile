# The two commands of the README: `make run` (serve the hub on SQLite) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'

run: install
	$(BIN)/hub db upgrade
	HUB_HOST=$(HOST) HUB_PORT=$(PORT) $(BIN)/hub init
	$(BIN)/hub worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/hub serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check hub tlp connectors migrations tests
	$(BIN)/lint-imports

# The quick benchmark runs first (its exact counters can fail the run; timings cannot), so
# that pytest's summary is the last thing printed.
test: install-dev lint
	$(BIN)/hub bench --quick $${HUB_TEST_PG_URL:+--pg-url "$$HUB_TEST_PG_URL"}
	$(BIN)/pytest

clean:
	rm -rf $(VENV) var build *.egg-info
