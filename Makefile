# Two commands do all the set-up on a fresh machine with Python 3.10+:
#   make demo   creates .venv if missing, installs, runs the main job
#   make test   same set-up (with the test tools), runs every test
# and one opens the notebooks:
#   make lab    same set-up (with JupyterLab and a kernel), opens notebooks/01_quickstart.ipynb
#               in JupyterLab; LAB_ARGS passes options, e.g. LAB_ARGS='--no-browser --port=8899'
PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
LAB_ARGS ?=

.PHONY: demo lab test lint typecheck pytest bench bench-quick bench-core bench-dashboard clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "elwh-nb needs Python 3.10 or newer; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.lab: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[lab]'
	@touch $(VENV)/.runtime $@

# The dev extra includes the lab extra.
$(VENV)/.dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(VENV)/.runtime $(VENV)/.lab $@

demo: $(VENV)/.runtime
	$(PY) -m elwh_nb demo

# The public hook route is on: installing the package enabled its server extension.
# As root (containers, many hubs) Jupyter refuses to start without --allow-root: given here.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: $(VENV)/.lab
	$(PY) -m jupyterlab --ServerApp.root_dir=. $(ALLOW_ROOT) $(LAB_ARGS) notebooks/01_quickstart.ipynb

lint: $(VENV)/.dev
	$(PY) -m ruff format --check elwh_nb tests bench testkit
	$(PY) -m ruff check elwh_nb tests bench testkit

typecheck: $(VENV)/.dev
	$(PY) -m mypy

pytest: $(VENV)/.dev
	$(PY) -m pytest

test: lint typecheck pytest

# The inner loop: everything but the tests marked slow (real servers, kernels, browser, hub).
test-fast: $(VENV)/.dev
	$(PY) -m pytest -m "not slow"

# Needs wrk (apt-get install wrk). `bench` rewrites BENCHMARKS.md and its plots;
# `bench-quick` (about two minutes, a smoke check in CI) writes to a temporary folder.
bench: $(VENV)/.dev
	$(PY) -m bench.ingest

bench-quick: $(VENV)/.dev
	$(PY) -m bench.ingest --quick

bench-core: $(VENV)/.dev
	$(PY) -m bench.core

bench-dashboard: $(VENV)/.dev
	$(PY) -m bench.dashboard

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
