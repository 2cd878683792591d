# The README's two commands are `make demo` and `make test`; everything else
# here serves them or CI (.ci/run).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make test` runs the whole suite, PostgreSQL and Redis tests included, so it
# needs both services: the machine's own or `docker compose up -d postgres redis`.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/opsadmin
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install demo test lint check audit

install: $(VENV)/.installed

$(VENV)/.installed: requirements/dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "opsadmin needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.lock
	touch $@

demo: install
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

test: install
	./scripts/ensure-test-tools
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	OPSADMIN_REQUIRE_SERVICES=1 \
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy finance incidents stuck reconciliation waivers overrides security \
		jobs alerts sandbox opsadmin
	$(BIN)/python manage.py makemigrations --check --dry-run

# Known vulnerabilities in the locked dependencies: pip-audit where PyPI
# answers, the local PyPA advisory database for the rest (security/depscan.py).
audit: install
	$(BIN)/python -m security.depscan

# Rebuild the lock files after a change to pyproject.toml.
lock:
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements/base.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -q -o requirements/dev.lock
