# Two commands on a fresh clone: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch 2.13.0 lies on this machine's disk; a looser spec would pull a multi-GB
# CUDA build. Elsewhere: `make TORCH_SPEC="torch" demo`, or install torch yourself first.
TORCH_SPEC ?= torch==2.13.0
# Data for tests and benchmarks (ml-100k, ml-latest-small), never committed here.
export COLLABKIT_DATA ?= $(abspath ../shared/datasets)

.PHONY: demo test bench lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m collabkit.demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

# Benchmarks, not tests: collabkit beside Surprise and fastai (installed into their own
# .bench-venv), speed and scale. ~40 min on 2 cores; BENCH_ARGS=--quick for ~5.
bench: $(VENV)/.installed
	bash benchmarks/peers_env.sh
	$(PY) benchmarks/run.py $(BENCH_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build dist .pytest_cache
