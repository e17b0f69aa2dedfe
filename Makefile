PYTHON ?= python3

.PHONY: install test test-all lint format upstream-fixtures

install:            ## the package, its test and evaluation extras
	$(PYTHON) -m pip install -e ".[dev,evaluation]"

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
