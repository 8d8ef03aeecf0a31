from __future__ import annotations

import itertools

import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.apply.ducklake_backend import DuckLakeBackend
from pipelines.apply.postgres_backend import PostgresBackend
from tests.support.databases import ducklake_target, temp_postgres

_dbs = itertools.count()


@pytest.fixture(scope="session")
def pg_server():
    with temp_postgres("apply") as (cluster, conninfo):
        yield cluster, conninfo


@pytest.fixture(params=["duckdb", "postgres", "ducklake"])
def backend(request, tmp_path):
    if request.param == "duckdb":
        b = DuckDbBackend(tmp_path / "reportingdb.duckdb")
    elif request.param == "ducklake":
        b = DuckLakeBackend(ducklake_target(tmp_path))
    else:
        cluster, conninfo = request.getfixturevalue("pg_server")
        db = f"apply_{next(_dbs)}"
        cluster.psql(f"CREATE DATABASE {db}")
        b = PostgresBackend(conninfo.replace("dbname=postgres", f"dbname={db}"))
    yield b
    b.close()
