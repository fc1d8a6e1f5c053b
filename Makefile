PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per install kind: `make run` needs the runtime only, `make test` the test
# extras too; each stamp is renewed when pyproject.toml changes, so switching works.
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test

.PHONY: run test bench lint typecheck layers clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

$(TESTING): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(RUNTIME) $(TESTING)

run: $(RUNTIME)
	$(BIN)/prvng platform start --host $${HOST:-127.0.0.1} --port $${PORT:-8080}

test: $(TESTING) lint typecheck layers
	$(BIN)/python -m pytest -q

lint: $(TESTING)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TESTING)
	$(BIN)/mypy

layers: $(TESTING)
	$(BIN)/lint-imports

bench: $(RUNTIME)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
