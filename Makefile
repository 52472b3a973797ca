# The only prerequisite is python3 (3.11+): everything else is installed from
# uv.lock into .venv on first use, and again whenever pyproject.toml or
# uv.lock change.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test lint schema migrate

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra dev --python python3
	touch $@

install: $(VENV)/.synced

## Serve on http://127.0.0.1:8000/graphql with SQLite + memory:// (no configuration).
run: install
	$(VENV)/bin/python main.py

## The whole test suite (SQLite + memory:// unless PARLEY_TEST_BACKEND=postgres).
test: install
	$(VENV)/bin/python -m pytest $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

schema: install
	$(VENV)/bin/python main.py schema

migrate: install
	$(VENV)/bin/python main.py migrate
