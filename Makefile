# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
# Every install step is here or in `reporting stack up`: idempotent and pinned
# (requirements.lock for Python, connectors/pom.xml for the JVM side, Debian packages by name).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install demo test test-unit test-e2e test-faults lint contract-check ui clean-state

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

## The demo: stack up, MusicCorp traffic, pipeline until caught up, dbt build, a report.
demo: install
	$(BIN)/reporting demo

## The test command CI runs (.ci/run calls exactly this).
test: install lint contract-check
	$(BIN)/reporting stack install
	$(BIN)/pytest -m "not slow" --junitxml=test-artifacts/junit.xml

lint: install
	$(BIN)/ruff check .

contract-check: install
	$(BIN)/reporting contract check

test-unit: install
	$(BIN)/pytest -m unit -q

test-e2e: install
	$(BIN)/pytest -m e2e

## The full fault suite: 25 kills, 30 s outages (CI runs the reduced set inside `make test`).
test-faults: install
	$(BIN)/reporting stack install
	REPORTING_FAULTS_FULL=1 $(BIN)/pytest -m faults

ui: install
	$(BIN)/reporting ui

clean-state:
	$(BIN)/reporting stack reset --yes
