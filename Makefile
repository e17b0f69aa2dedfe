PYTHON ?= python3

.PHONY: install test test-all lint format upstream-fixtures bench

install:            ## the package, its test and evaluation extras
	$(PYTHON) -m pip install -e ".[dev,evaluation,render,onnx,openvino,listen]"

test:               ## the default suite (what CI runs): everything but the slow tests
	$(PYTHON) -m pytest -q -m "not slow"

test-all:           ## every test, slow ones included
	$(PYTHON) -m pytest -q

lint:
	ruff check spleeter tests tools
	ruff format --check spleeter tests tools

format:
	ruff format spleeter tests tools
	ruff check --fix spleeter tests tools

upstream-fixtures:  ## regenerate tests/fixtures/upstream with upstream 2.4.2 (see tools/upstream_fixtures)
	$(UPSTREAM_PYTHON) tools/upstream_fixtures/make_fixtures.py

UPSTREAM_PYTHON ?= /work/upstream-venv/bin/python
BENCH_ARGS ?=

bench:              ## speed/memory vs upstream 2.4.2 (~40 min; BENCH_ARGS=--quick; see tools/bench)
	UPSTREAM_PYTHON=$(UPSTREAM_PYTHON) $(PYTHON) tools/bench/bench.py $(BENCH_ARGS)
