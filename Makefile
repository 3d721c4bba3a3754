# 禺好办 backend. `make run` to start it locally, `make test` to test it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: help install lock run test lint typecheck security bench bench-login bench-queue bench-seals bench-push bench-policy bench-policy-12m bench-instant bench-rush clean worker backup restore prod-like prod-like-stop test-prod

help:  ## list the targets
	@echo "make run        start the service locally (SQLite, emulators, demo data) on :5000"
	@echo "make test       run the whole test suite (PostgreSQL when DATABASE_URL is set)"
	@echo "make lint       ruff;  make typecheck: mypy"
	@echo "make security   bandit and pip-audit (SECURITY_OFFLINE_OK=1: accept an unreachable audit service)"
	@echo "make bench-*    benchmarks: login, queue, seals, push, policy, policy-12m, instant (see README)"
	@echo "make worker     a Dramatiq worker (JOB_RUNNER=dramatiq, needs REDIS_URL)"
	@echo "make prod-like  the production topology on this machine (HAProxy on :8800); make prod-like-stop"
	@echo "make test-prod  the restart tests against a topology of their own (~5 min)"
	@echo "make bench-rush the rush-hour benchmark against make prod-like (started if needed)"
	@echo "make backup BACKUP_DIR=/new/folder; make restore BACKUP_DIR=...  (README: Backups and restore)"
	@echo "make lock       re-resolve requirements*.txt (with hashes) from requirements*.in"
	@echo "make clean      remove the virtualenv, local data and caches"

install: $(VENV)/.installed

# The lock files carry every package with its hashes: pip installs exactly those files.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %d.%d); set PYTHON=python3.11" % sys.version_info[:2])'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@# The lock's own pip first. The pip a new venv bundles (23.x with Python 3.11) takes an
	@# extra that a package asks for (pip-audit's CacheControl[filecache]) from the newest
	@# release instead of the pinned one, and then refuses it in --require-hashes mode.
	awk '/^pip==/{p=1} p{print} p&&!/\\$$/{exit}' requirements-dev.txt > $(VENV)/pip-pin.txt
	$(BIN)/pip install --quiet --require-hashes -r $(VENV)/pip-pin.txt
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	@echo "preparing the CJK font subset for seals and posters (once per user, ~30 s)"
	$(FLASK) seals build-font
	touch $@

# Re-resolve the locks after changing a pin in requirements.in or requirements-dev.in.
LOCK_FLAGS := --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock:
	test -d .lock-venv || $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet pip-tools==7.6.2
	.lock-venv/bin/pip-compile --quiet $(LOCK_FLAGS) -o requirements.txt requirements.in
	.lock-venv/bin/pip-compile --quiet $(LOCK_FLAGS) -o requirements-dev.txt requirements-dev.in

# SQLite in var/, in-process jobs, the WeChat emulator on :8765, demo data, the app on :5000.
run: install
	./scripts/run_local.sh

# Installs the Debian tools the tests use (chromium for the console, poppler, zbar...) when root.
# Lists the 20 slowest tests at the end: CI's time is budgeted (README, "Tests and
# benchmarks"), and a suite that doubles its time on a slow machine shows where.
test: install
	./scripts/test_tools.sh
	$(BIN)/pytest --durations=20

lint: install
	$(BIN)/ruff check .

# The bench scripts import their siblings as top-level modules (each puts its own folder on
# sys.path), so mypy checks them as such; the product's packages resolve from here.
typecheck: install
	$(BIN)/mypy app blueprints wechat seals verification config
	MYPYPATH=bench $(BIN)/mypy bench/*.py

# bandit over the code (settings in pyproject.toml) and pip-audit over requirements.txt; each
# justified finding is in security/FINDINGS.md. Without the vulnerability service (PyPI, OSV)
# it fails, unless SECURITY_OFFLINE_OK=1, which says so and passes.
security: install
	$(BIN)/python scripts/security_check.py

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

bench-push: install
	$(BIN)/python bench/push_drain.py

bench-policy: install
	$(BIN)/python bench/policy_match.py

# 秒批 under gunicorn on PostgreSQL with wrk (apt-get install wrk), beside bare issue_document.
bench-instant: install
	$(BIN)/python bench/instant_approval.py

# 12M enterprises generated once into their own database, then dropped; target match <= 20 s.
bench-policy-12m: install
	$(BIN)/python bench/policy_match.py --enterprises 12000000 --match-target 20

# A Dramatiq worker for JOB_RUNNER=dramatiq (needs REDIS_URL).
worker: install
	$(BIN)/dramatiq app.jobs.worker --processes 1 --threads 4

# The production topology on this machine (README: Production topology): PostgreSQL database
# yhb_prodlike, Redis, the emulators over TLS, two gunicorn instances behind HAProxy on :8800,
# a Dramatiq worker and two schedulers (one leads). Returns when it answers through the
# balancer; pids, logs and state.json in var/prod-like/.
prod-like: install
	$(BIN)/python scripts/prod_like.py start

prod-like-stop:
	$(BIN)/python scripts/prod_like.py stop

# The morning rush against the topology: takes, windows, screens, 秒批 and a policy push at
# once, through the balancer (wrk). Starts prod-like when it is not running, and stops it then.
bench-rush: install
	$(BIN)/python bench/rush_hour.py $(if $(wildcard var/prod-like/state.json),,--start) $(RUSH_ARGS)

# Restart tests (tests/prod, marker prodlike): they start a topology of their own on other
# ports, with a private redis-server, and stop it.
test-prod: install
	./scripts/test_tools.sh
	$(BIN)/pytest -m prodlike tests/prod

# The database and the file stores into a new folder, and back (README: Backups and restore).
backup: install
	$(FLASK) ops backup --to "$(if $(BACKUP_DIR),$(BACKUP_DIR),$(error BACKUP_DIR is required: make backup BACKUP_DIR=/srv/backups/new-folder))"

restore: install
	$(FLASK) ops restore --from "$(if $(BACKUP_DIR),$(BACKUP_DIR),$(error BACKUP_DIR is required: make restore BACKUP_DIR=/srv/backups/that-folder))"

clean:
	rm -rf $(VENV) .lock-venv var .pytest_cache .ruff_cache .mypy_cache .hypothesis
