# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
# Every install step is here or in `reporting stack up`: idempotent and pinned
# (requirements.lock for Python, connectors/pom.xml for the JVM side, Debian packages by name).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install demo test test-unit test-e2e test-faults test-bi test-ducklake lint contract-check ui clean-state

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

## The demo: stack up, MusicCorp traffic, pipeline until caught up, dbt build, a report.
demo: install
	$(BIN)/reporting demo

## The test command CI runs (.ci/run calls exactly this). Whatever pytest's outcome, it then stops what the e2e
## tests left running and deletes their servers folder outside the checkout (/var/tmp/reporting-servers-<hash>,
## when the checkout sits under a 0700 folder); their logs stay in .state/e2e (`make clean-state` removes them).
## The state folder follows tests/e2e/conftest.py: .state/e2e[-offset], or .state/e2e-ducklake[-offset] when
## REPORTING_E2E_BACKEND=ducklake.
E2E_OFFSET     := $(or $(REPORTING_E2E_PORT_OFFSET),100)
e2e_env         = REPORTING_STATE_DIR=$(CURDIR)/.state/$(if $(filter 100,$(E2E_OFFSET)),$(1),$(1)-$(E2E_OFFSET)) \
                  REPORTING_PORT_OFFSET=$(E2E_OFFSET) REPORTING_JVM_DIR=$(CURDIR)/.state/jvm
E2E_DUCKDB_ENV := $(call e2e_env,e2e)
E2E_LAKE_ENV   := $(call e2e_env,e2e-ducklake)
E2E_ENV        := $(if $(filter ducklake,$(REPORTING_E2E_BACKEND)),$(E2E_LAKE_ENV),$(E2E_DUCKDB_ENV))

test: install lint contract-check
	$(BIN)/reporting stack install
	$(BIN)/pytest -m "not slow" --junitxml=test-artifacts/junit.xml; status=$$?; \
	$(E2E_ENV) $(BIN)/reporting stack down && \
	$(E2E_ENV) $(BIN)/python -c 'from pipelines.stack.manager import Stack; Stack().remove_servers_dir()' \
	|| [ $$status -ne 0 ] || status=1; exit $$status

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

## Superset on the reporting database, read in a real browser (tests/e2e/test_superset.py, also in `make test`; ~4.5 min).
test-bi: install
	$(BIN)/reporting stack install
	$(BIN)/pytest -m bi tests/e2e/test_superset.py; status=$$?; \
	$(E2E_ENV) $(BIN)/reporting stack down || true; exit $$status

## The DuckLake backend end to end on the real stack (tests/e2e/test_ducklake_e2e.py; not in `make test`, ~5-7 min), all
## its integration tests, the slow ones too (writers racing maintenance and dbt; ~7 min), and the general e2e suites
## with the stack's reporting DB a DuckLake (REPORTING_E2E_BACKEND=ducklake, state in .state/e2e-ducklake[-offset]; ~6.5 min).
## test_faults.py first: its PostgreSQL-backend scenario reads the topics from offset 0 into the PostgreSQL reporting DB,
## where the drift event test_apply_cases.py leaves in orders.public.orders would stay a dead letter (its projection
## fix is replayed only into the e2e backend), and reconcile would find that order missing.
E2E_LAKE_SUITES := tests/e2e/test_faults.py tests/e2e/test_orders_slice.py tests/e2e/test_apply_cases.py \
                   tests/e2e/test_truncate_e2e.py tests/e2e/test_resnapshot.py
test-ducklake: install
	$(BIN)/reporting stack install
	REPORTING_E2E_BACKEND=duckdb $(BIN)/pytest tests/e2e/test_ducklake_e2e.py tests/integration/ducklake tests/integration/apply/test_ducklake_pg_catalog.py; status=$$?; \
	$(E2E_DUCKDB_ENV) $(BIN)/reporting stack down || true; \
	REPORTING_E2E_BACKEND=ducklake $(BIN)/pytest -m e2e $(E2E_LAKE_SUITES) || status=1; \
	$(E2E_LAKE_ENV) $(BIN)/reporting stack down || true; \
	$(E2E_LAKE_ENV) $(BIN)/python -c 'from pipelines.stack.manager import Stack; Stack().remove_servers_dir()' || true; \
	exit $$status

ui: install
	$(BIN)/reporting ui

## Stop the stack and delete all state but the jars: .state/* (the e2e and other test state folders too) and the
## servers folders outside the checkout (/var/tmp/reporting-servers-*) of every state folder under .state, plus
## orphaned ones whose state folder is gone. A stack still running from another state folder under .state
## makes it stop with an error (stop that one first).
clean-state:
	$(BIN)/reporting stack reset --yes
