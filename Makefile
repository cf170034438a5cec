# vyperp — two commands for a new user: `make demo` and `make test`.
# Each target installs what it needs (Python venv with pinned versions,
# anvil from npm) idempotently, then runs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: install demo test test-fast lint fuzz mutate bench clean

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error  # the lock lists every platform: it is never rewritten
	touch $@

demo: install
	$(PY) scripts/simulate.py

test: install lint
	$(PY) -m pytest -q -p no:cacheprovider -n auto --maxprocesses 4 --dist loadfile tests
	$(BIN)/ape compile --force > /dev/null  # ape's incremental compile can miss source changes
	$(BIN)/ape test tests/ape -q

lint: $(PY_STAMP)
	$(BIN)/ruff check keeper scripts tests bench
	$(BIN)/ruff format --check keeper scripts tests bench
	$(PY) -m keeper.artifacts --check-warnings
	$(PY) scripts/check_imports.py  # no import cycle between keeper/ modules, lazy imports included

fuzz: install  # FUZZ_EXAMPLES=N for fewer than 2,000 examples per machine; one shard per core
	$(PY) scripts/fuzz.py

mutate: install  # hours: every mutant against its contract's tests and tests/e2e; out/mutation.md
	$(PY) scripts/mutate.py

bench: install
	$(PY) bench/gas.py
	$(PY) bench/liquidations.py
	$(PY) bench/simulation.py

clean:
	rm -rf .build build out .pytest_cache .hypothesis
