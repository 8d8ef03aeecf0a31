from __future__ import annotations

import socket

import dagster as dg
import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.defs.ingest import live_contracts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def definitions():
    from pipelines.definitions import build_definitions

    return build_definitions()


@pytest.fixture(scope="session")
def repo(definitions):
    return definitions.get_repository_def()


@pytest.fixture
def reporting_env(tmp_path, monkeypatch):
    """A private state folder and DuckDB file; Kafka and Connect on ports where nothing listens."""
    state = tmp_path / "state"
    monkeypatch.setenv("REPORTING_STATE_DIR", str(state))
    monkeypatch.setenv("REPORTING_DUCKDB_PATH", str(tmp_path / "reportingdb.duckdb"))
    monkeypatch.setenv("REPORTING_BACKEND", "duckdb")
    monkeypatch.setenv("REPORTING_PORT_CONNECT", str(_free_port()))
    monkeypatch.setenv("REPORTING_PORT_KAFKA", str(_free_port()))
    monkeypatch.delenv("REPORTING_CATALOG_PATH", raising=False)
    return tmp_path


@pytest.fixture
def duckdb_with_schema(reporting_env):
    """The temp reporting DuckDB with `_pipeline` and every live contract table; yields its path."""
    path = reporting_env / "reportingdb.duckdb"
    backend = DuckDbBackend(path)
    try:
        backend.ensure_schema(live_contracts())
    finally:
        backend.close()
    return path


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst
