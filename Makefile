# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/wsol demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q tests --nbmake notebooks

bench: $(STAMP)
	$(PY) benchmarks/bench_boxes.py
	$(PY) benchmarks/bench_cam.py
	$(PY) benchmarks/bench_evaluate.py
	$(PY) benchmarks/bench_synth.py
	$(PY) benchmarks/bench_memory.py

clean:
	rm -rf $(VENV) runs .pytest_cache
