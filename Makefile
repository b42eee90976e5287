# Quick start: `make demo` (set up, then train the shipped Crafter model briefly and sample it) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-full lint format clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.txt
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/python -m main +name=demo +recipe=crafter_demo

test: setup
	$(BIN)/python -m pytest -m "not slow and not gpu"

test-full: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) outputs .pytest_cache
