# One line of intent per target. `make book` and `make test` are all a new user needs.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

VENDOR := book/_vendor
NPM_STAMP := $(VENDOR)/node_modules/.installed
# Debian packages: command -> package (Chromium for the browser test, bubblewrap for the grading sandbox,
# PostgreSQL for the class-scale grading test, npm for the book's assets)
SYSTEM_TOOLS := chromium:chromium chromedriver:chromium-driver bwrap:bubblewrap pg_lsclusters:postgresql npm:npm

.PHONY: setup system-tools book test lint bench bench-book reproduce learnability clean lab release collect autograde feedback export

setup: $(STAMP) system-tools $(NPM_STAMP)  ## venv with the pinned dependencies and selfsup (editable), the book's npm assets, Chromium and bubblewrap; quick when nothing changed

system-tools:  ## (part of setup) install the missing Debian tools when root; otherwise say how
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool#*:}"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing"; apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "make setup: missing Debian packages:$$missing (npm builds the book; Chromium runs the browser test; bubblewrap sandboxes grading; PostgreSQL serves the class-scale grading test)."; \
		echo "  install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing"; \
	fi

$(NPM_STAMP): $(VENDOR)/package.json $(VENDOR)/package-lock.json | system-tools  ## the book's browser assets, pinned by package-lock.json
	npm ci --prefix $(VENDOR) --no-audit --no-fund --ignore-scripts
	touch $@

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

bench-book: setup  ## book build times: cold (fresh model cache) and no-change rebuild, per page; writes benchmarks/results/book.json
	$(BIN)/python benchmarks/bench_book.py

reproduce: setup  ## every experiment over 5 seeds ([SEEDS=5] [PRESET=book|full] [DEVICE=cuda] [ONLY=ch1]); writes benchmarks/results/reproductions.{json,md}; exits 1 if a check holds in < 4 of 5 seeds
	$(BIN)/python benchmarks/reproduce.py $(if $(SEEDS),--seeds $(SEEDS)) $(if $(PRESET),--preset $(PRESET)) $(if $(DEVICE),--device $(DEVICE)) $(if $(ONLY),--only $(ONLY))

learnability: setup  ## does pre-training help on ToyWorld? 3 seeds, about 10 minutes; exits 1 if not
	$(BIN)/python benchmarks/learnability.py

lab: setup  ## JupyterLab on exercises/ with the course's Python: do an exercise, then `selfsup check` it
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab --ServerApp.root_dir=exercises

release: setup  ## regenerate exercises/ from solutions/ with nbgrader (all, or ASSIGNMENT=01-masking)
	$(BIN)/selfsup grade release $(ASSIGNMENT)

collect: setup  ## copy a class's submissions: SUBMISSIONS=folder-or-zip ASSIGNMENT=01-masking [ROSTER=ids.csv]
	$(if $(and $(SUBMISSIONS),$(ASSIGNMENT)),,$(error give SUBMISSIONS=folder-or-zip and ASSIGNMENT=id))
	$(BIN)/selfsup grade collect $(SUBMISSIONS) --assignment $(ASSIGNMENT) $(if $(ROSTER),--roster $(ROSTER))

autograde: setup  ## grade every collected submission in a fresh kernel with a time limit ([ASSIGNMENT=..] [JOBS=2])
	$(BIN)/selfsup grade autograde $(ASSIGNMENT) $(if $(JOBS),--jobs $(JOBS))

feedback: setup  ## an HTML page per student and assignment in grading/feedback/, hidden tests left out
	$(BIN)/selfsup grade feedback $(ASSIGNMENT)

export: setup  ## scores per student and assignment as CSV (grading/grades.csv, or OUT=file.csv)
	$(BIN)/selfsup grade export $(ASSIGNMENT) $(if $(OUT),--out $(OUT))

clean:  ## remove build outputs (keeps the venv)
	rm -rf _build .pytest_cache
