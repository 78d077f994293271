# One line of intent per target. `make book` and `make test` are all a new user needs.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup book test lint bench learnability clean

setup: $(STAMP)  ## venv with the pinned dependencies and selfsup (editable); quick when nothing changed

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

book: setup  ## build the book (every page executed) into _build/html
	$(BIN)/jupyter-book build --warningiserror --keep-going .

test: setup  ## the whole suite: library, book pages, exercises, grading, ruff
	$(BIN)/python -m pytest

lint: setup  ## ruff alone (lint and format)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup  ## speed and memory against the reference implementations; writes benchmarks/results/
	$(BIN)/python benchmarks/run.py

learnability: setup  ## does pre-training help on ToyWorld? 3 seeds, about 10 minutes; exits 1 if not
	$(BIN)/python benchmarks/learnability.py

clean:  ## remove build outputs (keeps the venv)
	rm -rf _build .pytest_cache
