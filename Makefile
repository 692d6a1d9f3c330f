# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint install browser snmp-tools freediameter clean-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/openbss demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/mypy
	$(BIN)/lint-imports

# Debian's Chromium for the browser tests (Playwright drives it; no browser is ever downloaded by a test tool)
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
	  echo "could not install chromium: the browser tests skip (and fail under CI=true)"; }

# Debian's net-snmp command-line tools: the SNMP trap tests send real traps with snmptrap
snmp-tools:
	@command -v snmptrap >/dev/null || { echo "installing Debian's snmp tools for the trap tests"; \
	  apt-get install -y -q snmp >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q snmp >/dev/null 2>&1; } || \
	  echo "could not install snmp: the trap tests skip (and fail under CI=true)"; }

# Debian's freeDiameter (daemon and extensions): the Diameter front-end tests run it as an independent peer
freediameter:
	@command -v freeDiameterd >/dev/null && test -e /usr/lib/freeDiameter/dict_dcca.fdx || \
	  { echo "installing Debian's freediameter for the Diameter tests"; \
	  apt-get install -y -q freediameter >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q freediameter >/dev/null 2>&1; } || \
	  echo "could not install freediameter: the freeDiameter tests skip (and fail under CI=true)"; }

# the suite in parallel: one process per worker, each with its own database (openbss_test_<pid>), temporary
# directory and NATS streams; TEST_WORKERS=0 runs it in this process
TEST_WORKERS ?= 2
test: lint browser snmp-tools freediameter
	$(BIN)/python -m openbss.cli db check
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

clean-demo:
	rm -rf var/
