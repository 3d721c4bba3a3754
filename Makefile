# 禺好办 backend. `make run` to start it locally, `make test` to test it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: install run test lint typecheck bench bench-login clean worker

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
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
	$(BIN)/mypy app blueprints wechat seals config

bench: bench-login

bench-policy-12m: install  # 12M enterprises generated once into their own DB, then dropped; target match <= 20 s
	$(BIN)/python bench/policy_match.py --enterprises 12000000 --match-target 20

bench-login: install
	$(BIN)/python bench/login.py

# A Dramatiq worker for JOB_RUNNER=dramatiq (needs REDIS_URL).
worker: install
	$(BIN)/dramatiq app.jobs.worker --processes 1 --threads 4

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
