# The two commands a fresh clone needs: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_SCALE ?= full

.PHONY: test lint typecheck unit demo soak bench clean

$(STAMP): pyproject.toml setup.py elax_plan/_f32json.c elax_plan/_json_numbers.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
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

unit: $(STAMP)
	$(BIN)/pytest

# The quickstart: apply plans/quickstart.yaml against the embedded emulator (data and
# state in ./.elax-demo/). A second run prints "No changes" and exits 0.
demo: $(STAMP)
	$(BIN)/elax-plan apply plans/quickstart.yaml --auto-approve

# Crash-safety soak: 50 kill -9 trials of apply, each re-run to the exact dataset.
soak: $(STAMP)
	ELAX_CRASH_TRIALS=50 $(BIN)/pytest tests/apply/test_crash.py -q

# Issue #7's and #14's benchmarks: prints the table of targets and writes
# benchmarks/results/latest.json (full: ~5 min on a 2-core machine before #14's concurrency-1
# runs, ~8 with them (estimated), and benchmarks/results/full-<date>.md). BENCH_SCALE=small
# runs the same method on smaller datasets in two minutes or so.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --scale $(BENCH_SCALE)

clean:
	rm -rf $(VENV) .elax-demo .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
