# Commands on a fresh clone: `make demo`, `make test`, `make serve`. All build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch 2.13.0 lies on this machine's disk; a looser spec would pull a multi-GB
# CUDA build. Elsewhere: `make TORCH_SPEC="torch" demo`, or install torch yourself first.
TORCH_SPEC ?= torch==2.13.0
# Data for tests and benchmarks (ml-100k, ml-latest-small), never committed here.
export COLLABKIT_DATA ?= $(abspath ../shared/datasets)

.PHONY: demo test bench lint clean serve

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m collabkit.demo

# The demo model over HTTP on 127.0.0.1:8000 (docs at /docs); `make demo` trains it first when
# runs/ has none. Feedback goes to runs/demo-ml-latest-small.feedback.sqlite3. Set
# COLLABKIT_API_KEY for the app role; SERVE_ARGS="--port 9000" etc. are passed on.
DEMO_MODEL := runs/demo-ml-latest-small
serve: $(VENV)/.installed
	test -f $(DEMO_MODEL)/model.json || $(PY) -m collabkit.demo
	$(PY) -m collabkit serve $(DEMO_MODEL) $(SERVE_ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -q

# Benchmarks, not tests: collabkit beside Surprise and fastai (installed into their own
# .bench-venv), speed and scale. ~40 min on 2 cores; BENCH_ARGS=--quick for ~5.
bench: $(VENV)/.installed
	bash benchmarks/peers_env.sh
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# The static checks CI runs after the tests (issue 9): style, types (mypy reads
# [tool.mypy] in pyproject.toml) and the import layers (.importlinter). Each must pass.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build dist .pytest_cache
