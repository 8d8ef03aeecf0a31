"""The whole local stack for end-to-end tests, in its own state folder and port range.

Uses REPORTING_STATE_DIR=<repo>/.state/e2e and REPORTING_PORT_OFFSET=100 (or the offset in
REPORTING_E2E_PORT_OFFSET), so a developer's demo stack (default ports, .state/) keeps running
untouched; the resolved jars are shared.

The reporting backend of the run is REPORTING_E2E_BACKEND: duckdb (the default) or ducklake. The suites that
follow it read the reporting database through tests/support/reporting_db.py; `make test-ducklake` lists them.
A DuckLake run has its own state folder (`.state/e2e-ducklake`, or `.state/e2e-ducklake-<offset>`), so it
never mixes with a DuckDB run, and uses the DuckLake engine's venv `.state/ducklake-venv`.
"""

from __future__ import annotations

import os

import pytest

from pipelines.procenv import environ_overlay
from pipelines.settings import REPO_ROOT, Settings

# REPORTING_E2E_PORT_OFFSET lets several e2e runs share one machine (each gets its own folder too).
_OFFSET = os.environ.get("REPORTING_E2E_PORT_OFFSET", "100")
BACKEND = os.environ.get("REPORTING_E2E_BACKEND", "").strip() or "duckdb"
if BACKEND not in ("duckdb", "ducklake"):  # postgres: the readers support it, the suites were not run on it
    raise pytest.UsageError(f"REPORTING_E2E_BACKEND={BACKEND!r}: expected duckdb or ducklake")
_FOLDER = "e2e" if BACKEND == "duckdb" else f"e2e-{BACKEND}"  # Makefile: E2E_ENV / E2E_LAKE_ENV
E2E_ENV = {
    "REPORTING_STATE_DIR": str(REPO_ROOT / ".state" / (_FOLDER if _OFFSET == "100" else f"{_FOLDER}-{_OFFSET}")),
    "REPORTING_PORT_OFFSET": _OFFSET,
    "REPORTING_JVM_DIR": str(REPO_ROOT / ".state" / "jvm"),
    "REPORTING_BACKEND": BACKEND,
}
if BACKEND == "ducklake":  # one engine venv for every state folder (as tests/e2e/test_ducklake_e2e.py does)
    E2E_ENV["REPORTING_DUCKLAKE_VENV"] = str(REPO_ROOT / ".state" / "ducklake-venv")


@pytest.fixture(scope="session")
def e2e_env():
    with environ_overlay(E2E_ENV):
        yield Settings.load()


@pytest.fixture(scope="session")
def stack(e2e_env):
    """Fresh state, stack up, schemas + connectors; at the end, stack down and no process left."""
    from pipelines.stack.bootstrap import apply_connectors, create_service_schemas
    from pipelines.stack.manager import Stack, leftover_processes

    settings = e2e_env
    st = Stack(settings)
    st.down(say=lambda _m: None)
    st.wipe()  # also the servers folder outside the state folder, when there is one
    try:
        st.up(say=print)
        create_service_schemas(st, say=print)
        apply_connectors(st, say=print)
        yield st
    finally:
        st.down(say=print)
        left = leftover_processes(settings)
        assert not left, f"processes left after stack down: {left}"
        st.remove_servers_dir(say=print)  # /var/tmp/reporting-servers-<hash>, when there is one (not under .state)
