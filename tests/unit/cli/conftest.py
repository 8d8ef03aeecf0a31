"""Fixtures for the `reporting` command's tests: a private estate file and a small reporting DuckDB.

No server is started: commands that would reach one run with the stack down (their status says so) or with
the reaching function replaced by a fake. CliRunner's streams are not terminals, so every run shows what
a pipe gets.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.contract.model import load_contracts
from tests.support.estate import bundled_estate, write_estate

WIDTH = {"COLUMNS": "80", "LINES": "40"}


def live_contracts():
    return [c for c in load_contracts(bundled_estate().contracts) if c.status != "retired"]


@pytest.fixture(autouse=True)
def _fresh_cli_configuration():
    """The `reporting` command keeps the configuration it built for the invocation (its contract
    sub-commands read it through hooks); a test's estate must not leak into the next test."""
    import pipelines.cli

    yield
    pipelines.cli._state.update(estate=None, settings=None)


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch):
    """No estate, backend, colour or terminal overrides from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("REPORTING_") or name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def estate(tmp_path) -> Path:
    """A copy of the bundled estate whose state, reporting DuckDB and Connect URL are private to the test
    (Connect on a port nothing listens on: the stack is down)."""
    db = tmp_path / "reportingdb.duckdb"  # not reporting.duckdb: DuckDB names its catalog after the file
    path = write_estate(tmp_path, **{"reporting.duckdb.path": str(db), "connect.urls": ["http://127.0.0.1:9"]})
    backend = DuckDbBackend(db)
    try:
        backend.ensure_schema(live_contracts())
    finally:
        backend.close()
    return path


@pytest.fixture
def reporting_db(estate) -> Path:
    return estate.parent / "reportingdb.duckdb"


@pytest.fixture
def cli(estate):
    """Run `reporting --estate <private estate> ARGS` at 80 columns; returns the click Result."""
    from pipelines.cli import app

    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None):
        return runner.invoke(app, ["--estate", str(estate), *args], env={**WIDTH, **(env or {})}, input=input)

    return run
