# The quick start: `make demo` renders the demo episode, `make test` runs the tests. Both create the
# virtual environment first if needed (torch's CPU wheel first, so pip never pulls a CUDA build).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.farm-installed

.PHONY: demo test setup lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	@# The distribution was called `farm` before it became avatarfarm: a venv made then holds both otherwise.
	$(PY) -m pip uninstall --quiet --yes farm 2>/dev/null || true
	$(PY) -m pip install --quiet -e '.[render,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/farm render shots/demo/episode.yaml

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check farm tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
