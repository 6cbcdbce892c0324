# recpipe: two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
LOCK    := requirements/lock-py310.txt
CONFIG  ?= configs/local.yaml
DATA    ?= data/clicklog
# A Python 3.10 interpreter: override with `make PYTHON=/path/to/python3.10 ...`.
PYTHON  ?= $(shell for p in python3.10 /root/.pyenv/versions/3.10.13/bin/python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do \
             if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then command -v $$p; break; fi; done)
BIN     := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore

.PHONY: help setup run test check e2e bench lint clean

help:
	@echo "make run    - set up .venv, generate a small click log, run the whole pipeline locally"
	@echo "make test   - unit tests + end-to-end pipeline tests, with MariaDB and an S3 server (~15 min here)"
	@echo "make check  - the fast tier for day-to-day work: unit tests (no pipeline runs) + ruff"
	@echo "make e2e    - only the end-to-end pipeline suites (and any marked slow)"
	@echo "make bench  - benchmarks -> docs/BENCHMARKS.md (needs ML=path/to/ml-latest-small for MovieLens)"
	@echo "make lint   - ruff"

# The venv is rebuilt when the lock changes; pip installs exact pins, so no resolver run.
$(BIN)/.installed: $(LOCK) pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: no Python 3.10 found. TFX 1.16 needs Python 3.10 (Requires-Python <3.11)."; \
	  echo "       Install one (e.g. 'pyenv install 3.10.13') or pass PYTHON=/path/to/python3.10."; exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' || { \
	  echo "error: PYTHON=$(PYTHON) is not Python 3.10; TFX 1.16 needs 3.10."; exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r $(LOCK)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

setup: $(BIN)/.installed

run: setup
	@if [ ! -d "$(DATA)" ]; then $(BIN)/recpipe generate --out $(DATA) --days 3 --events-per-day 70000 --seed 7; fi
	$(BIN)/recpipe run --config $(CONFIG)

# -rs lists every skipped test with its reason. In CI there must be none: .ci/run sets RECPIPE_FAIL_ON_SKIP,
# and a skip then fails the run (tests/conftest.py).
test: setup
	$(BIN)/python -m pytest -m "not slow" -q -rs --durations=15

check: setup
	$(BIN)/python -m pytest tests/unit -m "not slow" -q -rs -x
	$(BIN)/ruff check pipeline components bench tests

e2e: setup
	$(BIN)/python -m pytest tests/e2e -q

bench: setup
	$(BIN)/python -m bench.benchmarks $(if $(ML),--movielens $(ML),)

lint: setup
	$(BIN)/ruff check pipeline components bench tests
	$(BIN)/ruff format --check pipeline components tests

clean:
	rm -rf runs serving data build
