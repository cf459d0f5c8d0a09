# Everything runs from a virtualenv this Makefile creates, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint format demo bench bench-lag clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP) lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: $(STAMP)
	$(PY) -m emulator.demo

bench: $(STAMP)
	$(PY) benchmarks/replicator_apply.py

bench-lag: $(STAMP)
	$(PY) benchmarks/end_to_end_lag.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis benchmarks/results
