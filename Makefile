# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint install browser snmp-tools snmp-agent freediameter clean-demo

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

# Debian's net-snmp agent: the performance tests poll counters from a local snmpd (started by the test on
# 127.0.0.1 with its own configuration); the package's own service is not started
snmp-agent:
	@test -x /usr/sbin/snmpd || { echo "installing Debian's snmpd for the performance collection tests"; \
	  { RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends snmpd >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && \
	    RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends snmpd >/dev/null 2>&1; }; } \
	  || echo "could not install snmpd: the collection tests skip (and fail under CI=true)"; }

# Debian's freeDiameter (daemon, extensions, and the headers to build the test's DCCA client extension): the
# Diameter front-end tests run it as an independent peer
FREEDIAMETER_PACKAGES := freediameter libfreediameter-dev gcc
freediameter:
	@{ command -v freeDiameterd && command -v cc && test -e /usr/lib/freeDiameter/dict_dcca.fdx && \
	  test -e /usr/include/freeDiameter/extension.h; } >/dev/null || \
	  { echo "installing Debian's freediameter for the Diameter tests"; \
	  apt-get install -y -q $(FREEDIAMETER_PACKAGES) >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $(FREEDIAMETER_PACKAGES) >/dev/null 2>&1; } || \
	  echo "could not install freediameter: the freeDiameter tests skip (and fail under CI=true)"; }

# the suite in parallel: one process per worker, each with its own database (openbss_test_<pid>), temporary
# directory and NATS streams; TEST_WORKERS=0 runs it in this process
TEST_WORKERS ?= 2
test: lint browser snmp-tools snmp-agent freediameter
	$(BIN)/python -m openbss.cli db check
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

clean-demo:
	rm -rf var/
