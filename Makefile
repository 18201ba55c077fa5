# Quick start: `make demo` (install + run the pipeline on the bundled demo data), `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
WAREHOUSE ?= build/demo.duckdb

.PHONY: demo test lint install suites demo-data lock clean

$(INSTALLED): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/openmrr run --data seeds/demo --warehouse $(WAREHOUSE)

lint: $(INSTALLED)
	mkdir -p build
	$(BIN)/ruff check .
	OPENMRR_WAREHOUSE=build/lint.duckdb $(BIN)/sqlfluff lint models

# Everything, the slow server tests included (CI runs exactly this). `.venv/bin/pytest` alone skips them.
test: lint
	scripts/install-system-deps
	scripts/install-test-servers
	$(BIN)/pytest -m "slow or not slow"

# Regenerate the GE suites from openmrr/contract.py, and the demo data folder.
suites: $(INSTALLED)
	$(BIN)/python -m openmrr.suites

demo-data: $(INSTALLED)
	rm -rf seeds/demo
	$(BIN)/openmrr generate --customers 200 --seed 7 --out seeds/demo --start 2023-01-01 --months 18

lock: $(INSTALLED)
	(echo '# Exact versions of every package in the environment (pip freeze). Regenerate with `make lock`.'; $(BIN)/pip freeze --exclude-editable) > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) build dbt_project/target dbt_project/logs
