# Everything runs from a virtualenv this Makefile creates, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test lint format demo chaos bench bench-lag bench-verify bench-chaos bench-calls clean

# `make`: the developer's install, editable with the dev extra (an operator's is `pip install .`).
dev: $(STAMP)

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
	$(PY) -m demo $(if $(CAPTURE),--capture $(CAPTURE))

# Seeded fault campaigns on the emulator, every key judged: `make chaos SEED=7` replays one.
chaos: $(STAMP)
	$(PY) -m chaos $(if $(SEED),--seed $(SEED)) $(if $(STEPS),--steps $(STEPS))

bench: $(STAMP)
	$(PY) benchmarks/replicator_apply.py

bench-lag: $(STAMP)
	$(PY) benchmarks/end_to_end_lag.py

bench-verify: $(STAMP)
	$(PY) benchmarks/verify_scan.py
bench-cost: $(STAMP)
	$(PY) benchmarks/cost_model.py
bench-chaos: $(STAMP)
	$(PY) benchmarks/chaos_campaigns.py
bench-calls: $(STAMP)
	$(PY) benchmarks/api_calls.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis benchmarks/results .cache dist

# The Lambda zips' vendored packages (lambda/requirements.txt) as wheels for the Lambda runtime,
# downloaded once, so the packaging tests and `build_lambdas.py --wheelhouse` run offline.
# The Python version comes from lambda_runtime in defaults.json.
.PHONY: lambda-wheels build
LAMBDA_WHEELS := .cache/lambda-wheels
LAMBDA_PYTHON := $(shell sed -n 's/.*"lambda_runtime": *"python\([0-9.]*\)".*/\1/p' defaults.json)

$(LAMBDA_WHEELS)/.downloaded: lambda/requirements.txt defaults.json | $(STAMP)
	$(PY) -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
		--platform manylinux2014_x86_64 --implementation cp --python-version $(LAMBDA_PYTHON) \
		-r lambda/requirements.txt -d $(LAMBDA_WHEELS)
	touch $@

lambda-wheels: $(LAMBDA_WHEELS)/.downloaded

test: lambda-wheels

# dist/sender.zip, dist/replicator.zip and dist/manifest.json, for Terraform.
build: $(STAMP)
	$(PY) tools/build_lambdas.py
