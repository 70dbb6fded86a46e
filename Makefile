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

# `hub bench` generates load with wrk (Debian's package) so that the load tool does not
# compete with the server for the interpreter; without it the benchmark falls back to a
# Python client and says so on every load line. The browser tests drive Debian's Chromium
# through Playwright (Playwright's own browser downloads are not used). Both are installed
# here when missing and we may (root, apt-get); without them the benchmark says so and the
# browser tests skip, saying why.
CHROMIUM ?= /usr/bin/chromium

install-dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	@command -v wrk >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk </dev/null >/dev/null 2>&1 || \
	    { DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk </dev/null >/dev/null 2>&1; } || \
	    echo "wrk not installed: hub bench will use its Python load client"; \
	  else echo "wrk not installed (needs apt-get as root): hub bench will use its Python load client"; fi; }
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q --no-install-recommends chromium </dev/null >/dev/null \
	    || { apt-get update -q </dev/null >/dev/null \
	         && apt-get install -y -q --no-install-recommends chromium </dev/null >/dev/null; } \
	    || echo "chromium could not be installed: the browser tests will be skipped"; \
	  else \
	    echo "no $(CHROMIUM) and no root apt-get: the browser tests will be skipped"; \
	  fi; \
	fi

# The audit checkpoints are signed with a key kept outside the database: made once, in var/,
# unless HUB_AUDIT_SIGNING_KEY_FILE names one already.
AUDIT_KEY ?= $(if $(HUB_AUDIT_SIGNING_KEY_FILE),$(HUB_AUDIT_SIGNING_KEY_FILE),var/audit-signing.key)

run: install
	$(BIN)/hub db upgrade
	HUB_HOST=$(HOST) HUB_PORT=$(PORT) $(BIN)/hub init
	@mkdir -p var; [ -f $(AUDIT_KEY) ] || $(BIN)/hub audit keygen --out $(AUDIT_KEY)
	export HUB_AUDIT_SIGNING_KEY_FILE=$(AUDIT_KEY); \
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
