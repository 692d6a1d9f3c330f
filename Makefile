# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint install clean-demo

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

test: lint
	$(BIN)/python -m openbss.cli db check
	$(BIN)/pytest

clean-demo:
	rm -rf var/
