# Two commands on a fresh machine: `make demo` and `make test` do all their own set-up.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# CPU wheel on this kind of machine; an already installed torch >= 2.1 is reused as is.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= test,optuna,bench,docs,torch-integrations,uq
STAMP  := $(VENV)/.zo-installed

.PHONY: setup demo test test-fast typecheck docs bench-quick bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip "setuptools>=77" wheel
	$(PY) -c "import torch, sys; v = tuple(int(p) for p in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 1))" 2>/dev/null \
		|| $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m zo_scipy.demo --out demo-output

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

typecheck: $(STAMP)
	$(PY) -m mypy

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html -q docs docs/_build/html

bench-quick: $(STAMP)
	$(PY) -m benchmarks --quick

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) docs/_build demo-output .pytest_cache
