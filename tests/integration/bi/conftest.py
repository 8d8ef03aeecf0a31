"""Fixtures for the BI access tests: a provisioned PostgreSQL reporting server, DuckDB lock holders.

`reporting_server` is a real PostgreSQL 15 (temp_postgres) provisioned by the stack's own
`provision_reporting`, with the pipeline's schema created by the pipeline's own backend as
`reporting_writer`, i.e. AFTER the grants, like on a real server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.apply.postgres_backend import PostgresBackend
from pipelines.contract.model import load_contracts
from pipelines.settings import REPO_ROOT, Settings
from pipelines.stack.postgres import PgCluster, provision_reporting
from tests.integration.dbt import musiccorp_dataset
from tests.support.databases import temp_postgres
from tests.support.estate import settings_for


@dataclass
class ReportingServer:
    cluster: PgCluster
    writer_password: str
    bi_password: str

    def conninfo(self, role: str, db: str = "reporting") -> str:
        password = self.writer_password if role == "reporting_writer" else self.bi_password
        return f"host=127.0.0.1 port={self.cluster.port} dbname={db} user={role} password={password}"

    def connect(self, role: str, db: str = "reporting") -> psycopg.Connection:
        return psycopg.connect(self.conninfo(role, db), autocommit=True)

    def settings(self, state_dir: Path) -> Settings:
        """Settings of a `reporting` command pointed at this server: a copy of the bundled estate with
        the PostgreSQL backend on this cluster, its passwords in the estate's env_file (state_dir/secrets.env)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        env_file = state_dir / "secrets.env"
        env_file.write_text(f"REPORTING_BI_TEST_WRITER_PASSWORD={self.writer_password}\n"
                            f"REPORTING_BI_TEST_READER_PASSWORD={self.bi_password}\n")
        return settings_for(state_dir, **{
            "state_dir": str(state_dir), "env_file": str(env_file), "reporting.backend": "postgres",
            "reporting.postgres.host": "127.0.0.1", "reporting.postgres.port": self.cluster.port,
            "reporting.postgres.database": "reporting",
            "reporting.postgres.writer": {"user": "reporting_writer",
                                          "password": {"env": "REPORTING_BI_TEST_WRITER_PASSWORD"}},
            "reporting.postgres.reader": {"user": "bi_reader",
                                          "password": {"env": "REPORTING_BI_TEST_READER_PASSWORD"}}})


@pytest.fixture(scope="session")
def reporting_server() -> Iterator[ReportingServer]:
    with temp_postgres("bi") as (cluster, _superuser):
        server = ReportingServer(cluster, secrets.token_urlsafe(16), secrets.token_urlsafe(16))
        provision_reporting(cluster, server.writer_password, server.bi_password)
        contracts = [c for c in load_contracts() if c.status != "retired"]
        backend = PostgresBackend(server.conninfo("reporting_writer"))
        try:
            backend.ensure_schema(contracts)
        finally:
            backend.close()
        with server.connect("reporting_writer") as con:
            musiccorp_dataset.load(lambda sql, params: con.execute(sql, params), contracts, "postgres",
                                   dt.datetime.now(dt.UTC))
        yield server


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests build their settings from an estate copy with an explicit environment; keep the
    developer's estate choice and overrides out of anything that still reads the process environment."""
    for name in ("REPORTING_ESTATE", "REPORTING_STATE_DIR", "REPORTING_BACKEND", "REPORTING_DUCKDB_PATH",
                 "REPORTING_PORT_OFFSET", "REPORTING_PG_PASSWORD", "REPORTING_PG_BI_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


DBT_DIR = REPO_ROOT / "dbt_project"


def dbt_run(target: str, workdir: Path, select: tuple[str, ...] = ("+fct_orders", "+dim_customers"),
            **env_vars: str) -> None:
    """`dbt run --select ...` on `target` with this repo's project (artifacts under `workdir`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPORTING_", "DBT_"))}
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false", **env_vars)
    cmd = [str(Path(sys.executable).parent / "dbt"), "run", "--select", *select, "--project-dir", str(DBT_DIR),
           "--profiles-dir", str(DBT_DIR), "--target", target, "--target-path", str(workdir / "target"),
           "--log-path", str(workdir / "logs")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    assert done.returncode == 0, f"dbt run --target {target} failed:\n{done.stdout[-4000:]}"


def load_musiccorp_duckdb(path: Path) -> None:
    """The MusicCorp dataset in a DuckDB reporting file, with the pipeline's own schema beside it."""
    contracts = [c for c in load_contracts() if c.status != "retired"]
    backend = DuckDbBackend(path)
    try:
        backend.ensure_schema(contracts)
        musiccorp_dataset.load(lambda sql, params: backend.conn.execute(sql, params), contracts, "duckdb",
                               dt.datetime.now(dt.UTC))
    finally:
        backend.close()


HOLDER = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1])
conn.execute("CREATE SCHEMA IF NOT EXISTS reporting")
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin
conn.close()
"""


@contextlib.contextmanager
def duckdb_held(path: Path) -> Iterator[subprocess.Popen]:
    """Another process holding a read-write DuckDB connection on `path` (like `reporting stream`)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "holding", f"holder did not start: {line!r} {proc.stderr.read()}"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
