# 禺好办 backend. `make run` to start it locally, `make test` to test it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: help install run test lint typecheck bench bench-login bench-queue bench-seals bench-policy bench-policy-12m clean worker

help:  ## list the targets
	@echo "make run        start the service locally (SQLite, emulators, demo data) on :5000"
	@echo "make test       run the whole test suite (PostgreSQL when DATABASE_URL is set)"
	@echo "make lint       ruff;  make typecheck: mypy"
	@echo "make bench-*    benchmarks: login, queue, seals, policy, policy-12m (see README)"
	@echo "make worker     a Dramatiq worker (JOB_RUNNER=dramatiq, needs REDIS_URL)"
	@echo "make clean      remove the virtualenv, local data and caches"

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %d.%d); set PYTHON=python3.11" % sys.version_info[:2])'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# SQLite in var/, in-process jobs, the WeChat emulator on :8765, demo data, the app on :5000.
run: install
	./scripts/run_local.sh

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy app blueprints wechat seals verification config

# Each prints its figures beside a baseline measured in the same run. The queue and policy
# benchmarks need PostgreSQL: DATABASE_URL=postgresql+psycopg://... make bench-queue
bench: bench-login bench-seals

bench-login: install
	$(BIN)/python bench/login.py

bench-queue: install
	$(BIN)/python bench/queue_load.py
	$(BIN)/python bench/queue_simulation.py

bench-seals: install
	$(BIN)/python bench/seal_sign.py

bench-policy: install
	$(BIN)/python bench/policy_match.py

# 12M enterprises generated once into their own database, then dropped; target match <= 20 s.
bench-policy-12m: install
	$(BIN)/python bench/policy_match.py --enterprises 12000000 --match-target 20

# A Dramatiq worker for JOB_RUNNER=dramatiq (needs REDIS_URL).
worker: install
	$(BIN)/dramatiq app.jobs.worker --processes 1 --threads 4

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache .hypothesis
