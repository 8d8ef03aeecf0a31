"""Real databases for the reconciliation tests: one PostgreSQL 15 cluster per session (sources and the
PostgreSQL reporting backend, one database per test), DuckDB files in tmp_path."""

from __future__ import annotations

import itertools
import os

import pytest

from pipelines.contract.model import load_contracts
from pipelines.projection import load_projections
from pipelines.settings import REPO_ROOT
from tests.support.databases import temp_postgres

_dbs = itertools.count()


@pytest.fixture(scope="session")
def pg_server():
    with temp_postgres("reconcile") as (cluster, conninfo):
        # throw-away data: no fsync, so CREATE DATABASE and the shutdown checkpoint stay fast on a busy disk
        cluster.psql("ALTER SYSTEM SET fsync = off;\nALTER SYSTEM SET synchronous_commit = off;\n"
                     "ALTER SYSTEM SET full_page_writes = off;\nSELECT pg_reload_conf();\n")
        yield cluster, conninfo


@pytest.fixture
def new_pg_db(pg_server):
    """Factory: a fresh database on the session cluster; returns its superuser conninfo."""
    cluster, conninfo = pg_server

    def make(prefix: str) -> str:
        name = f"{prefix}_{os.getpid()}_{next(_dbs)}"
        cluster.psql(f"CREATE DATABASE {name}")
        return conninfo.replace("dbname=postgres", f"dbname={name}")

    return make


@pytest.fixture(scope="session")
def contracts():
    return {c.physical_name: c for c in load_contracts() if c.status != "retired"}


@pytest.fixture(scope="session")
def projections():
    return load_projections(REPO_ROOT / "connectors")
