# PyTake: `make run` starts the whole platform, `make test` runs the suite. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)

# Everything in the Procfile but `release` (migrations run once, before the rest starts).
PROCESSES := web webhooks bots sends campaigns analytics maintenance beat flower sandbox

.PHONY: install run migrate superadmin test test-unit test-integration bench bench-throughput bench-bots bench-campaigns clean-data help

help:
	@echo "make run      start web, every worker pool, beat and Flower on embedded stores (Ctrl-C stops all)"
	@echo "make test     run the test suite (set TEST_DATABASE_URL / TEST_REDIS_URL to use your servers)"
	@echo "make migrate  apply database migrations"
	@echo "make superadmin EMAIL=you@example.com   create a platform super_admin (asks for the password)"
	@echo "make bench    run the benchmarks under bench/"
	@echo "make bench-throughput   the message pipeline's figures and targets in one run (quiet machine)"
	@echo "make bench-campaigns    campaigns: ledger, pacing and ceiling for 100,000 recipients over 2 numbers (BENCH_ARGS=\"--recipients 10000\")"
	@echo "make bench-bots         chatbots: bot steps/s and reply latency through the sandbox (BENCH_ARGS=\"--customers 100\")"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	@echo "pytake: installing dependencies into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -c "import web, workers.app, shared.embedded" || (echo "pytake: install failed" && exit 1)
	@touch $(STAMP)

install: $(STAMP)

run: install
	@$(BIN)/python -m shared.embedded -- sh -c '\
		alembic upgrade head && \
		echo "" && \
		echo "pytake: API      http://localhost:$${WEB_PORT:-8000}/docs   (ReDoc /redoc, spec /openapi.json)" && \
		echo "pytake: health   http://localhost:$${WEB_PORT:-8000}/readyz?deep=1" && \
		echo "pytake: Flower   http://localhost:$${FLOWER_PORT:-5555}   (user $${FLOWER_USER:-admin}, password $${FLOWER_PASSWORD:-pytake})" && \
		echo "pytake: Ctrl-C stops everything; data stays in ./var" && \
		echo "" && \
		exec honcho start -e /dev/null $(PROCESSES)'

migrate: install
	@$(BIN)/python -m shared.embedded -- alembic upgrade head

superadmin: install
	@test -n "$(EMAIL)" || (echo "usage: make superadmin EMAIL=you@example.com" && exit 2)
	@$(BIN)/python -m shared.embedded -- $(BIN)/python -m shared.cli create-superadmin --email "$(EMAIL)"

test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install
	@$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

test-integration: install
	@$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

bench: install
	@for script in bench/[a-z]*.py; do case $$script in *_tasks.py|bench/throughput.py) continue;; esac; echo "== $$script"; $(BIN)/python -m shared.embedded -- $(BIN)/python $$script || exit 1; done

# The message pipeline's figures with their targets, one benchmark after the other (see bench/throughput.py).
bench-throughput: install
	@$(BIN)/python -m shared.embedded -- $(BIN)/python bench/throughput.py

# Chatbots on the bots pool through the sandbox: steps/s and message -> reply p95 (see bench/bots.py; --help for options).
bench-bots: install
	@$(BIN)/python -m shared.embedded -- $(BIN)/python bench/bots.py $(BENCH_ARGS)

bench-campaigns: install
	@$(BIN)/python -m shared.embedded -- $(BIN)/python bench/campaigns.py $(BENCH_ARGS)

clean-data:
	rm -rf var/
