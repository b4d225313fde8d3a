# The two commands a fresh clone needs: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_SCALE ?= full
# The render check (tests/render/): the npm packages its package-lock.json pins, and Debian's
# chromium, which draws the summaries' mermaid charts as GitHub does.
RENDER_STAMP := tests/render/node_modules/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: test lint typecheck unit demo soak bench clean

$(STAMP): pyproject.toml setup.py elax_plan/_f32json.c elax_plan/_json_numbers.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(RENDER_STAMP): tests/render/package.json tests/render/package-lock.json
	cd tests/render && npm ci --no-audit --no-fund --loglevel=error
	touch $(RENDER_STAMP)

# Installed only when missing (CI's machine and a new one); needs root, as every machine here is.
$(CHROMIUM):
	apt-get update -q
	apt-get install -y -q --no-install-recommends chromium fonts-liberation fonts-noto-color-emoji

test: $(STAMP) $(RENDER_STAMP) $(CHROMIUM)
	$(BIN)/ruff check elax_plan tests
	$(BIN)/ruff format --check elax_plan tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check elax_plan tests
	$(BIN)/ruff format --check elax_plan tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(RENDER_STAMP) $(CHROMIUM)
	$(BIN)/pytest

# The quickstart: apply plans/quickstart.yaml against the embedded emulator (data and
# state in ./.elax-demo/). A second run prints "No changes" and exits 0.
demo: $(STAMP)
	$(BIN)/elax-plan apply plans/quickstart.yaml --auto-approve

# Crash-safety soaks, 50 kill -9 trials of apply each, every one re-run to the exact dataset:
# alone (test_crash), and beside live traffic on a server that races appends, the application
# writing other documents into the namespace meanwhile (test_crash_live_traffic). ~4 min.
soak: $(STAMP)
	ELAX_CRASH_TRIALS=50 $(BIN)/pytest tests/apply/test_crash.py tests/apply/test_crash_live_traffic.py -q

# Issue #7's and #14's benchmarks: prints the table of targets and writes
# benchmarks/results/latest.json (full: ~5 min on a 2-core machine before #14's concurrency-1
# runs, ~8 with them (estimated), and benchmarks/results/full-<date>.md). BENCH_SCALE=small
# runs the same method on smaller datasets in two minutes or so.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --scale $(BENCH_SCALE)

clean:
	rm -rf $(VENV) .elax-demo .pytest_cache .mypy_cache .ruff_cache .import_linter_cache \
		tests/render/node_modules .artifacts
