# Two commands set up a fresh machine: `make up` runs the service, `make test` runs the tests.
# Each creates the virtual environment it needs (.venv) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint typecheck unit clean browsers

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/jobkeeper up

SOURCES := jobkeeper tests $(wildcard bench)

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy

# The dashboard's browser tests (tests/e2e) drive Debian's chromium through Playwright; never
# `playwright install`. Installs chromium only when it is missing.
browsers:
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }

# Two workers (pytest-xdist): tests/conftest.py keeps the process-heavy tests on one of them, in turn.
# Schemathesis' generated cases are not scheduled by xdist, so its module has a pass of its own.
SCHEMATHESIS := tests/api/test_schemathesis.py
test: lint typecheck browsers
	$(BIN)/pytest -n 2 --dist loadgroup --ignore=$(SCHEMATHESIS) $(PYTEST_ARGS)
	$(BIN)/pytest $(SCHEMATHESIS)

# Removes this clone's own embedded database too (.jobkeeper/, the default data dir of a checkout), never a
# data dir elsewhere (an installed setup's, or JOBKEEPER_DATA_DIR's). Refuses while its server is running.
clean:
	@pid=$$(head -n 1 .jobkeeper/data/pgdata/postmaster.pid 2>/dev/null); \
	if [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; then \
		echo "the embedded PostgreSQL of this clone is running (pid $$pid): stop \`make up\` first" >&2; exit 1; \
	fi
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .jobkeeper
