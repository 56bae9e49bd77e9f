# Every install step of the project lives here, so a fresh machine needs only `make`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install test-deps up test lint bench clean

$(BIN)/python:
	@echo "creating the virtual environment $(VENV) ..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	@echo "installing tierserve and its dependencies into $(VENV) (TensorFlow: a few minutes the first time) ..."
	@$(BIN)/pip install -q -e .

# System packages the real-component tests use (Docker engine, nginx, Chromium).
test-deps: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	bash scripts/install-system-test-deps.sh

up: install
	$(BIN)/tierserve up

# Two test processes (pytest-xdist): tests/conftest.py keeps each module, and everything on
# the Docker engine, on one process, and hands out the longest groups first
# (testkit/xdist_groups.py).
TEST_WORKERS ?= 2

test: test-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q -p no:cacheprovider --durations=25 \
	    -n $(TEST_WORKERS) --dist loadgroup

lint:
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: install
	$(BIN)/tierserve bench

clean:
	rm -rf $(VENV) var
