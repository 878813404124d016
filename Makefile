# Gatehouse: `make run` starts everything, `make test` runs the test suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint format bench clean

install: $(STAMP)

# Reinstall only when the dependency list changes; pip keeps built wheels
# (llama-cpp-python compiles once) in its cache.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

run: install
	$(PY) -m webapp.launcher

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not browser and not model"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/relay.py

clean:
	rm -rf var/static var/*.log
