# The two commands a newcomer needs:  make run   and   make test
# (make serve runs the service alone against the endpoints in .env / the environment.)
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python keeps compiled modules in __pycache__ (pytest: its assertion-rewritten test modules): an
# environment that turns that off (PYTHONDONTWRITEBYTECODE) makes every pytest process (each xdist
# worker) rewrite and compile all test modules again, 15-20 s of CPU per collection here.
unexport PYTHONDONTWRITEBYTECODE

VENV      := python_modules
PY        := $(VENV)/bin/python
STAMP_DIR := .run
PORT      ?= 3000

.PHONY: help install run serve test test-unit test-e2e lint typecheck bench chaos clean espocrm-extension

help:
	@echo "make run    - sandbox: Redis + EspoCRM/Advoware simulators + service with Workbench on http://127.0.0.1:$(PORT)"
	@echo "make test   - lint, types, unit, integration and end-to-end tests (real Motia + Redis)"
	@echo "make test-unit / make test-e2e - the unit tier alone / everything else alone"
	@echo "make serve  - the service alone against the endpoints configured in .env / the environment"
	@echo "make bench  - performance benchmark (prints a table, never fails on speed)"
	@echo "make espocrm-extension - dist/vmh-beteiligte-espocrm.zip: the CBeteiligte entity as an EspoCRM extension"
	@echo "make chaos  - long chaos run: two instances, all faults, instance kills, Redis restarts (~25 min); prints the figures"

## install: everything the service and the tests need, idempotent (stamps in .run/)
install: $(STAMP_DIR)/redis $(STAMP_DIR)/chromium $(STAMP_DIR)/node $(STAMP_DIR)/motia-patches $(STAMP_DIR)/python

$(STAMP_DIR)/redis:
	@mkdir -p $(STAMP_DIR)
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@command -v redis-server >/dev/null && touch $@

# Headless Chromium (Debian package): the tests look at the Workbench the way staff see it.
$(STAMP_DIR)/chromium:
	@mkdir -p $(STAMP_DIR)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package; headless, for the Workbench tests)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@command -v chromium >/dev/null && touch $@

$(STAMP_DIR)/node: package.json package-lock.json
	@mkdir -p $(STAMP_DIR)
	@echo "installing Node packages (Motia runtime)"
	REDISMS_DISABLE_POSTINSTALL=1 npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The core patches (idempotent): again after every npm ci, and whenever a patch is added.
$(STAMP_DIR)/motia-patches: $(STAMP_DIR)/node scripts/patch-motia-core.sh scripts/patch-motia-core.mjs scripts/motia-port-gate.mjs scripts/vmh-webhook-check.mjs
	sh scripts/patch-motia-core.sh
	@touch $@

$(STAMP_DIR)/python: pyproject.toml
	@mkdir -p $(STAMP_DIR)
	@echo "installing the Python venv python_modules/ (Motia runs the steps with it)"
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,sandbox]'
	@touch $@

run: install
	@bash scripts/run-sandbox.sh

## espocrm-extension: the entity and its fields as an installable EspoCRM extension (from services/espocrm/schema.py)
espocrm-extension: install
	$(PY) -m services.espocrm.extension dist/vmh-beteiligte-espocrm.zip

serve: install
	@bash scripts/serve.sh

lint: install
	$(VENV)/bin/ruff check services steps sandbox tests bench
	$(VENV)/bin/ruff format --check services steps sandbox tests bench
	$(VENV)/bin/vulture

typecheck: install
	$(VENV)/bin/mypy

# `make test-unit` runs the unit tier (CPU only) on every core. Real stacks (mostly waiting for the
# service, not CPU) run on STACK_WORKERS workers, whole modules and lanes per worker
# (tests/conftest.py LANES); each worker starts the shared e2e stack it needs (tests/e2e/conftest.py).
# Four on 2 cores: the CPU is ~80 % busy with three (the stacks' waits leave gaps); four fill them
# (406 s against 454 s for the same tests, once the test stacks stopped bundling the Workbench).
UNIT_TIER     := tests/unit tests/sandbox
STACK_WORKERS ?= 4
STACK_XDIST   := --numprocesses $(STACK_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=30

test-unit: install
	$(VENV)/bin/pytest -q --numprocesses auto $(UNIT_TIER)

test-e2e: install
	$(VENV)/bin/pytest -q $(STACK_XDIST) -m "not alone" $(addprefix --ignore=,$(UNIT_TIER)) tests
	$(VENV)/bin/pytest -q -m alone $(addprefix --ignore=,$(UNIT_TIER)) tests

# Lint and types, then every test under tests/ in one run of STACK_WORKERS workers: the stacks'
# lanes first, the unit tier's modules last, where they fill the CPU the long lanes leave idle
# while they wait for the service (a run of its own first cost its whole time on top); then the
# one test that needs the machine to itself. `make test-unit` is the quick check of the unit tier.
test: install lint typecheck
	$(VENV)/bin/pytest -q -p no:cacheprovider $(STACK_XDIST) -m "not alone" tests
	$(VENV)/bin/pytest -q -p no:cacheprovider -m alone $(addprefix --ignore=,$(UNIT_TIER)) tests

bench: install
	$(PY) -m bench $(BENCH_ARGS)

# The long chaos run (the short variant is part of `make test`): thousands of edits against two
# instances on one Redis, every fault kind (lost answers included), people's saves during syncs,
# duplicate records, instance kills, Redis restarts and a FLUSHALL mid-burst. Prints the figures
# (also written to <pytest tmp>/chaos-figures.json). Override e.g. `make chaos CHAOS_ITERATIONS=10`.
CHAOS_ITERATIONS     ?= 55
CHAOS_RECORDS        ?= 40
CHAOS_INSTANCE_KILLS ?= 3
CHAOS_REDIS_RESTARTS ?= 2
CHAOS_REDIS_FLUSHES  ?= 1
CHAOS_SEED           ?= 8
chaos: install
	CHAOS_ITERATIONS=$(CHAOS_ITERATIONS) CHAOS_RECORDS=$(CHAOS_RECORDS) \
	CHAOS_INSTANCE_KILLS=$(CHAOS_INSTANCE_KILLS) CHAOS_REDIS_RESTARTS=$(CHAOS_REDIS_RESTARTS) \
	CHAOS_REDIS_FLUSHES=$(CHAOS_REDIS_FLUSHES) \
	CHAOS_SEED=$(CHAOS_SEED) $(VENV)/bin/pytest -q -s -p no:cacheprovider tests/chaos/test_convergence.py

clean:
	rm -rf $(STAMP_DIR) .motia types.d.ts .pytest_cache .mypy_cache .ruff_cache
