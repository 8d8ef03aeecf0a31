from __future__ import annotations

import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend


@pytest.fixture(params=["duckdb"])
def backend(request, tmp_path):
    if request.param == "duckdb":
        b = DuckDbBackend(tmp_path / "reportingdb.duckdb")
    yield b
    b.close()
