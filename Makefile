# Two commands set everything up on a fresh clone:
#   make demo   - sync upstream samples through local mirrors and load one image per source
#                 (../shared/upstream where present, else the miniatures in the package; SHARED=DIR chooses)
#   make test   - the whole test suite on the pinned environment (what CI runs)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat constraints.txt pyproject.toml | sha256sum | cut -c1-12)
SHARED ?=
DEMO_DIR ?= build/demo

.PHONY: demo test lint env clean

$(STAMP): constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(PY) -m covid19_images.testing.demo $(if $(SHARED),--shared $(SHARED)) --workdir $(DEMO_DIR)

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf build .pytest_cache
