PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per install kind: `make run` needs the runtime only, `make test` the test
# extras too; each stamp is renewed when pyproject.toml changes, so switching works.
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test

.PHONY: run test bench lint typecheck layers clean system-packages

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

$(TESTING): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(RUNTIME) $(TESTING)

# What pip cannot install: git signs the audit trail through ssh-keygen (openssh-client);
# the dashboard's browser tests drive Debian's chromium through playwright (never
# `playwright install`, which would download a browser of its own).
system-packages:
	@command -v ssh-keygen >/dev/null || { \
	  echo "installing openssh-client (ssh-keygen signs the audit trail)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq openssh-client; }
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (the dashboard's browser tests)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

run: $(RUNTIME) system-packages
	$(BIN)/prvng platform start --host $${HOST:-127.0.0.1} --port $${PORT:-8080}

test: $(TESTING) system-packages lint typecheck layers
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
