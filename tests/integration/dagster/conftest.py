"""Fixtures of the Dagster integration tests: the code location as it loads, and a private estate per test.

`reporting_env` writes a copy of the bundled estate file into the test's temp folder (its relative paths
made absolute), with its own state folder and DuckDB file and Kafka and Kafka Connect on free ports
where nothing listens, and selects it with REPORTING_ESTATE. Expected sets (services, contracts, fed
tables) are read from the estate and its files, never written down here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.config.load import BUNDLED_ESTATE, load_estate
from pipelines.config.model import Estate
from pipelines.defs.ingest import live_contracts
from pipelines.settings import Settings

OVERRIDES = ("REPORTING_STATE_DIR", "REPORTING_BACKEND", "REPORTING_DUCKDB_PATH", "REPORTING_PORT_OFFSET",
             "REPORTING_PLANNERS")
"""The estate's environment overrides (pipelines/config/load.py); the tests' estate files say it all."""

_PATH_KEYS = {"contracts", "dbt_project", "connector", "projection", "schema_sql", "ca_file", "file", "env_file",
              "path", "home", "state_dir"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _absolute(value, root: Path):
    if isinstance(value, dict):
        return {k: (str(root / v) if k in _PATH_KEYS and isinstance(v, str) and "{" not in v
                    and not Path(v).is_absolute() else _absolute(v, root)) for k, v in value.items()}
    if isinstance(value, list):
        return [_absolute(v, root) for v in value]
    return value


def write_estate(path: Path, edit: Callable[[dict], None] | None = None, base: Path = BUNDLED_ESTATE) -> Path:
    """A copy of the estate file `base` at `path`: relative paths made absolute (against `base`'s folder),
    then changed by `edit` (which receives the raw YAML mapping)."""
    raw = _absolute(yaml.safe_load(base.read_text()), base.resolve().parent)
    if edit is not None:
        edit(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def isolate(raw: dict, tmp_path: Path) -> None:
    """State folder, DuckDB file and Dagster home under `tmp_path`; Kafka and Connect on free ports."""
    raw["state_dir"] = str(tmp_path / "state")
    raw["kafka"]["bootstrap_servers"] = [f"127.0.0.1:{free_port()}"]
    raw["connect"]["urls"] = [f"http://127.0.0.1:{free_port()}"]
    raw["reporting"]["backend"] = "duckdb"
    raw["reporting"].setdefault("duckdb", {})["path"] = str(tmp_path / "reportingdb.duckdb")


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
    """Write a private estate file (see `isolate`; `edit` changes it further) and select it with
    REPORTING_ESTATE; returns its path."""

    def make(edit: Callable[[dict], None] | None = None, name: str = "reporting.yaml") -> Path:
        def both(raw: dict) -> None:
            isolate(raw, tmp_path)
            if edit is not None:
                edit(raw)

        path = write_estate(tmp_path / name, both)
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
