# The commands people type. `make run` and `make test` do their own set-up on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
# This machine's pip config names local mirrors that may be absent; their warnings are noise.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The production install: requirements.txt alone, as `pip install -r requirements.txt` on a server.
# The fault tests run every Procfile process from it (tests/faults/).
PROD_VENV := .venv-prod
PROD_STAMP := $(PROD_VENV)/.installed

.PHONY: run test test-fast bench lint lint-migrations format clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip $(QUIET_PIP)
	$(PY) -m pip install -q -r requirements-dev.txt $(QUIET_PIP)
	touch $(STAMP)

$(PROD_STAMP): requirements.txt
	rm -rf $(PROD_VENV)
	$(PYTHON) -m venv $(PROD_VENV)
	$(PROD_VENV)/bin/python -m pip install -q --upgrade pip $(QUIET_PIP)
	$(PROD_VENV)/bin/python -m pip install -q -r requirements.txt $(QUIET_PIP)
	$(PROD_VENV)/bin/python -m pip check
	touch $(PROD_STAMP)

run: $(STAMP)
	$(PY) scripts/run_local.py

test: $(STAMP) $(PROD_STAMP)
	bash scripts/ensure_services.sh
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything but the real-time fault tests and the other tests marked slow: the lane to work in.
test-fast: $(STAMP) $(PROD_STAMP)
	bash scripts/ensure_services.sh
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# The five benchmarks one after another, about 10 minutes on 2 cores (docs/benchmarks.md).
bench: $(STAMP)
	bash scripts/ensure_services.sh
	$(PY) bench/intake.py
	$(PY) bench/end_to_end.py
	$(PY) bench/provisioning.py
	$(PY) bench/webhooks.py
	$(PY) bench/reminders.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(MAKE) --no-print-directory lint-migrations

# A model changed without its migration fails (no database needed).
lint-migrations: $(STAMP)
	DATABASE_URL=sqlite:///:memory: DEBUG=false SECRET_KEY=makemigrations-check-$$RANDOM$$RANDOM-not-a-deployed-key-0123456789 \
		REQUIRE_CREDENTIALS=false $(PY) manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) $(PROD_VENV) .run db.sqlite3
