# Gatehouse: `make run` starts everything, `make test` runs the test suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LLAMA_VERSION := 0.3.36
# llama.cpp is compiled once into this wheelhouse, outside the work tree, and reused.
WHEELHOUSE ?= $(HOME)/.cache/gatehouse/wheels
# A portable build: -march=native would emit AVX-512/AMX code that some virtual
# machines advertise but refuse at run time (the model server then crashes).
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
else
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
endif

.PHONY: install run test test-fast lint format bench bench-relay-loop bench-api bench-downloads \
	bench-conversations bench-leaderboard drill clean

install: $(STAMP)

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(PY) -m pip wheel --quiet --no-deps --no-cache-dir -w $(WHEELHOUSE) \
	  llama-cpp-python==$(LLAMA_VERSION)
	$(PY) -m pip install --quiet --find-links $(WHEELHOUSE) -e '.[dev,local]'
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
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/relay.py

# The worker's relay loop alone: its CPU per token, relayed and read bare.
bench-relay-loop: install
	$(PY) bench/relay_loop.py

# What the /v1 API adds over calling the model server directly, and its requests per second.
bench-api: install
	$(PY) bench/api.py

# Serving a 1 GiB weight file: throughput next to cat, the web process's extra memory.
bench-downloads: install
	$(PY) bench/downloads.py

# Opening a 2,000-message conversation and searching 100,000 messages, next to a short one.
bench-conversations: install
	$(PY) bench/conversations.py

# The leaderboard recomputed from 100,000 votes over 30 models, next to a single fit.
bench-leaderboard: install
	$(PY) bench/leaderboard.py

# The fault drills (Redis, worker and PostgreSQL faults on a stack of their own), each
# run DRILL_RUNS times; prints their figures (docs/reliability.md).
DRILL_RUNS ?= 10
drill: install
	DRILL_RUNS=$(DRILL_RUNS) $(PY) -m pytest -m fault -q

clean:
	rm -rf var/static var/*.log var/test-logs
