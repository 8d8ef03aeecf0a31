"""Fixtures of the Dagster integration tests: the code location as it loads, and a private estate per test.

`reporting_env` writes a copy of the bundled estate file into the test's temp folder (its relative paths
made absolute), with its own state folder and DuckDB file and Kafka and Kafka Connect on free ports
where nothing listens, and selects it with REPORTING_ESTATE. Expected sets (services, contracts, fed
tables) are read from the estate and its files, never written down here.
"""

from __future__ import annotations

import socket
from pathlib import Path

import dagster as dg
import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.config.load import load_estate
from pipelines.config.model import Estate
from pipelines.defs.ingest import live_contracts
from pipelines.settings import Settings
from tests.support.estate import write_estate

OVERRIDES = ("REPORTING_STATE_DIR", "REPORTING_BACKEND", "REPORTING_DUCKDB_PATH", "REPORTING_PORT_OFFSET",
             "REPORTING_PLANNERS")
"""The estate's environment overrides (pipelines/config/load.py); the tests' estate files say it all."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated(tmp_path: Path) -> dict:
    """Estate changes (dotted keys, tests/support/estate.py): state folder and DuckDB file under
    `tmp_path`, Kafka and Kafka Connect on free ports where nothing listens."""
    return {"state_dir": str(tmp_path / "state"), "kafka.bootstrap_servers": [f"127.0.0.1:{free_port()}"],
            "connect.urls": [f"http://127.0.0.1:{free_port()}"], "reporting.backend": "duckdb",
            "reporting.duckdb.path": str(tmp_path / "reportingdb.duckdb")}


@pytest.fixture(scope="session")
def code_settings() -> Settings:
    """The configuration the code location is built from (as `reporting ui` would load it)."""
    return Settings.load()


@pytest.fixture(scope="session")
def definitions(code_settings):
    from pipelines.definitions import build_definitions

    return build_definitions(code_settings)


@pytest.fixture(scope="session")
def repo(definitions):
    return definitions.get_repository_def()


@pytest.fixture
def estate_file(tmp_path, monkeypatch):
    """`make(**changes)`: write a private copy of the bundled estate (`isolated`, then `changes`, dotted
    keys) and select it with REPORTING_ESTATE; returns its path. The overrides are cleared."""

    def make(**changes) -> Path:
        path = write_estate(tmp_path, **{**isolated(tmp_path), **changes})
        monkeypatch.setenv("REPORTING_ESTATE", str(path))
        return path

    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    return make


@pytest.fixture
def reporting_env(estate_file, tmp_path):
    """A private estate: its own state folder and DuckDB file; Kafka and Connect where nothing listens."""
    estate_file()
    return tmp_path


@pytest.fixture
def estate(reporting_env) -> Estate:
    """The private estate of `reporting_env`, loaded."""
    return load_estate()


@pytest.fixture
def duckdb_with_schema(reporting_env, estate):
    """The temp reporting DuckDB with `_pipeline` and every live contract table; yields its path."""
    path = estate.reporting.duckdb.path
    backend = DuckDbBackend(path)
    try:
        backend.ensure_schema(live_contracts(estate))
    finally:
        backend.close()
    return path


@pytest.fixture
def fed(estate):
    """One change topic a projection of the estate reads, its source table and the contract tables it feeds."""
    from pipelines.projection import load_estate_projections

    topic, tp = sorted(load_estate_projections(estate).items())[0]
    return topic, tp.source_table, sorted(t.physical_name for t in tp.targets)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst
