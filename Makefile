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

.PHONY: demo lab test lint typecheck pytest docs screenshots bench bench-quick bench-core bench-dashboard clean

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

$(VENV)/.docs: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[docs]'
	@touch $(VENV)/.runtime $(VENV)/.lab $@

# The dev extra includes the lab and docs extras.
$(VENV)/.dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(VENV)/.runtime $(VENV)/.lab $(VENV)/.docs $@

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

# The documentation site in docs/_build/html (Sphinx, MyST-NB, the PyData theme): warnings are
# errors, the notebooks run as it builds, and the API page must document every public name.
docs: $(VENV)/.docs
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
	$(PY) docs/check_api.py docs/_build/html/api.html

# The docs' pictures, as the browser test takes them (needs Chromium: apt-get install chromium).
screenshots: $(VENV)/.dev
	ELWH_SCREENSHOTS=docs/_build/screenshots $(PY) -m pytest -q tests/test_browser.py
	cp docs/_build/screenshots/dashboard.png docs/_build/screenshots/dashboard-inspect.png \
	   docs/_build/screenshots/header.png docs/

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
