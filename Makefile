# The only prerequisite is python3 (3.11+). Everything else is installed, at
# the versions pinned in requirements-dev.lock, into .venv on first use, and
# again whenever pyproject.toml or the lock change. uv does the installing.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test lint schema migrate lock bench

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml requirements-dev.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(UV) pip sync --python $(PY) requirements-dev.lock
	$(UV) pip install --python $(PY) --no-deps --editable .
	touch $@

install: $(VENV)/.synced

## Serve on http://127.0.0.1:8000/graphql with SQLite + memory:// (no configuration).
run: install
	$(PY) main.py

## The whole test suite (SQLite + memory:// unless PARLEY_TEST_BACKEND=postgres).
test: install
	$(PY) -m pytest $(ARGS)

## Benchmarks against in-run baselines (bench/README.md); ARGS=--smoke for the
## seconds-long CI variant, ARGS=--postgres for PostgreSQL + Redis.
bench: install
	$(PY) -m bench $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

schema: install
	$(PY) main.py schema

migrate: install
	$(PY) main.py migrate

## Re-pin the dependencies after changing pyproject.toml.
lock: $(UV)
	$(UV) pip compile pyproject.toml --python-version 3.11 --universal --no-header -q -o requirements.lock
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --universal --no-header -q -o requirements-dev.lock
