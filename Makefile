# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/wsol demo --out runs/demo

# ruff (lint + format check) over the tree, mypy on eval/ and cam/ (pyproject.toml), then the tests
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q tests --nbmake notebooks

bench: $(STAMP)
	$(PY) benchmarks/bench_boxes.py
	$(PY) benchmarks/bench_cam.py
	$(PY) benchmarks/bench_evaluate.py
	$(PY) benchmarks/bench_synth.py
	$(PY) benchmarks/bench_memory.py

clean:
	rm -rf $(VENV) runs .pytest_cache
