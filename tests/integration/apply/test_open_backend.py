"""`open_backend(settings)` opens the reporting backend the estate file declares, as it declares it.

DuckDB: the file is `reporting.duckdb.path` and the writer's tuning (memory_limit, checkpoint,
threads) is the estate's `reporting.duckdb`; a size that is not one fails naming the key. PostgreSQL:
the writer connects with the declared host/port/database/user and the password its secret reference
resolves to; a secret that does not resolve fails naming the key, without waiting.
"""

from __future__ import annotations

import itertools
import secrets
import time

import duckdb
import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.apply.postgres_backend import PostgresBackend
from pipelines.apply.runner import open_backend
from tests.support.estate import settings_for

pytestmark = pytest.mark.integration

_dbs = itertools.count()
_TUNING = ("memory_limit", "checkpoint_threshold", "threads")


def _tuning(con) -> tuple:
    return con.execute("SELECT " + ", ".join(f"current_setting('{s}')" for s in _TUNING)).fetchone()


def _as_set(memory_limit: str, checkpoint: str, threads: int) -> tuple:
    """What DuckDB reports after setting these values itself (its own units and rounding)."""
    with duckdb.connect(":memory:") as con:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET checkpoint_threshold = '{checkpoint}'")
        con.execute(f"SET threads = {threads}")
        return _tuning(con)


def test_duckdb_file_and_writer_tuning_come_from_the_estate(tmp_path):
    path = tmp_path / "declared" / "reportingdb.duckdb"
    settings = settings_for(tmp_path, **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(path),
                                         "reporting.duckdb.memory_limit": "96MB",
                                         "reporting.duckdb.checkpoint": "32MB", "reporting.duckdb.threads": 1})
    backend = open_backend(settings)
    try:
        assert isinstance(backend, DuckDbBackend) and backend.path == str(path) and path.exists()
        assert _tuning(backend.conn) == _as_set("96MB", "32MB", 1)
    finally:
        backend.close()

    # nothing declared: the model's defaults, which differ from the values above
    defaults = settings_for(tmp_path / "defaults", **{"reporting.duckdb.path": str(tmp_path / "d.duckdb")})
    declared = defaults.estate.reporting.duckdb
    backend = open_backend(defaults)
    try:
        expected = _as_set(declared.memory_limit, declared.checkpoint, declared.threads)
        assert _tuning(backend.conn) == expected != _as_set("96MB", "32MB", 1)
    finally:
        backend.close()


def test_a_duckdb_size_that_is_not_one_fails_naming_the_key(tmp_path):
    settings = settings_for(tmp_path, **{"reporting.duckdb.path": str(tmp_path / "r.duckdb"),
                                         "reporting.duckdb.memory_limit": "lots"})
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"reporting\.duckdb\.memory_limit='lots': expected a size"):
        open_backend(settings, wait_s=30)
    assert time.monotonic() - started < 10  # permanent: no waiting


@pytest.fixture
def writer(pg_server):
    """A fresh database owned by a fresh login role on the session's PostgreSQL: (port, db, role, password)."""
    cluster, _superuser = pg_server
    n = next(_dbs)
    role, db, password = f"writer_{n}", f"declared_{n}", secrets.token_urlsafe(12)
    cluster.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    cluster.psql(f"CREATE DATABASE {db} OWNER {role}")
    return cluster.port, db, role, password


def _pg_settings(tmp_path, port: int, db: str, role: str, environ: dict[str, str]):
    return settings_for(tmp_path, environ=environ, **{
        "reporting.backend": "postgres", "reporting.postgres.host": "127.0.0.1", "reporting.postgres.port": port,
        "reporting.postgres.database": db, "reporting.postgres.writer.user": role,
        "reporting.postgres.writer.password": {"env": "TEST_WRITER_PASSWORD"}})


def test_postgres_writer_connects_as_declared(tmp_path, writer):
    port, db, role, password = writer
    settings = _pg_settings(tmp_path, port, db, role, {"TEST_WRITER_PASSWORD": password})
    backend = open_backend(settings)
    try:
        assert isinstance(backend, PostgresBackend)
        assert backend.query("SELECT current_user, current_database(), inet_server_port()") == [(role, db, port)]
    finally:
        backend.close()


def test_postgres_writer_secret_that_does_not_resolve_fails_naming_the_key(tmp_path, writer):
    port, db, role, _password = writer
    settings = _pg_settings(tmp_path, port, db, role, {})
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"reporting\.postgres\.writer\.password: environment variable "
                                           r"TEST_WRITER_PASSWORD is not set"):
        open_backend(settings, wait_s=30)
    assert time.monotonic() - started < 10  # permanent: no waiting


@pytest.mark.parametrize("wrong", ["password", "database"])
def test_postgres_writer_rejected_login_fails_at_once(tmp_path, writer, wrong):
    """A wrong password or an unknown database is configuration, not an outage: no waiting."""
    port, db, role, password = writer
    if wrong == "password":
        settings = _pg_settings(tmp_path, port, db, role, {"TEST_WRITER_PASSWORD": password + "x"})
        expected = r"password authentication failed"
    else:
        settings = _pg_settings(tmp_path, port, db + "_nosuch", role, {"TEST_WRITER_PASSWORD": password})
        expected = r"does not exist"
    waited: list[str] = []
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=expected):
        open_backend(settings, wait_s=30, say=waited.append)
    assert time.monotonic() - started < 10 and not waited  # permanent: no waiting
