"""A reporting database per dbt target, loaded with the MusicCorp dataset and built once with `dbt build`.

`reporting` is parametrised over the two targets: a temporary DuckDB file, and a real PostgreSQL 15
cluster started in a temporary folder (as the `postgres` OS user, free loopback port, provisioned like
the stack's reporting server, always stopped at teardown). Each is declared in a copy of the bundled
estate file (tests/support/estate.py), and dbt's environment is what `dbt_env(settings)` derives from
it, as in Dagster. dbt runs as a subprocess with `--project-dir/--profiles-dir` the estate's
dbt_project and its target/log folders in the test's temp dir, so the repository stays clean. Sessions run with TZ/timezone Europe/Berlin so UTC day boundaries are tested.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from pipelines.contract.model import load_contracts
from pipelines.defs.dbt import dbt_env, dbt_target
from pipelines.settings import Settings
from pipelines.stack.postgres import provision_reporting
from tests.integration.dbt import musiccorp_dataset
from tests.support.databases import temp_postgres
from tests.support.estate import bundled_estate, settings_for

DBT_DIR = bundled_estate().dbt_project
DBT = Path(sys.executable).parent / "dbt"
SESSION_TZ = "Europe/Berlin"
DBT_TIMEOUT_S = 600


@dataclass
class BuiltReporting:
    """A reporting DB after `dbt build`: run dbt again, query it, read dbt's artifacts."""

    target: str
    workdir: Path
    env: dict[str, str]
    query: Callable[[str], list[tuple[Any, ...]]]

    def dbt(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_dbt(list(args), self.target, self.env, self.workdir)

    def artifact(self, name: str) -> dict[str, Any]:
        return json.loads((self.workdir / "target" / name).read_text())


def _clean_env(settings: Settings) -> dict[str, str]:
    """This process's environment without REPORTING_*/DBT_* variables, plus what dbt's profiles.yml
    reads for the estate's reporting backend (`dbt_env`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPORTING_", "DBT_"))}
    env.update(TZ=SESSION_TZ, DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false", **dbt_env(settings))
    return env


def _target(settings: Settings, expected: str) -> str:
    assert dbt_target(settings) == expected, f"the estate's backend {settings.backend!r} is not dbt target {expected}"
    return expected


def run_dbt(args: list[str], target: str, env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """`dbt <args>` on `target` with this repo's project and profiles; artifacts and logs under `workdir`."""
    cmd = [str(DBT), *args, "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--target", target,
           "--target-path", str(workdir / "target"), "--log-path", str(workdir / "logs")]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=DBT_TIMEOUT_S, check=False)  # noqa: S603


def _build(built: BuiltReporting) -> BuiltReporting:
    done = built.dbt("build")
    if done.returncode != 0:
        pytest.fail(f"dbt build --target {built.target} failed (exit {done.returncode}):\n{done.stdout[-6000:]}"
                    f"\n{done.stderr[-2000:]}", pytrace=False)
    return built


def _duckdb(workdir: Path) -> Iterator[BuiltReporting]:
    path = workdir / "reportingdb.duckdb"  # not reporting.duckdb: the catalog would clash with schema reporting
    settings = settings_for(workdir / "estate", **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(path)})
    assert settings.duckdb_path == path
    musiccorp_dataset.load_duckdb_file(path, load_contracts(settings.estate.contracts))

    def query(sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(path), read_only=True) as reader:
            return reader.execute(sql).fetchall()

    yield _build(BuiltReporting(_target(settings, "duckdb"), workdir, _clean_env(settings), query))


def _postgres(workdir: Path) -> Iterator[BuiltReporting]:
    with temp_postgres("dbt") as (cluster, _superuser):
        password = secrets.token_urlsafe(16)
        provision_reporting(cluster, password, secrets.token_urlsafe(16))
        settings = settings_for(workdir / "estate", environ={"DBT_TEST_PG_PASSWORD": password},
                                **{"reporting.backend": "postgres", "reporting.postgres.host": "127.0.0.1",
                                   "reporting.postgres.port": cluster.port,
                                   "reporting.postgres.writer.password": {"env": "DBT_TEST_PG_PASSWORD"}})
        pg = settings.estate.reporting.postgres
        cluster.psql(f"ALTER DATABASE {pg.database} SET timezone TO '{SESSION_TZ}'")
        conninfo = settings.reporting_pg_conninfo("writer")
        with psycopg.connect(conninfo, autocommit=True) as con:
            musiccorp_dataset.load(lambda sql, params: con.execute(sql, params),
                                   load_contracts(settings.estate.contracts), "postgres", dt.datetime.now(dt.UTC))

        def query(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(conninfo, autocommit=True) as reader:
                return reader.execute(sql).fetchall()

        yield _build(BuiltReporting(_target(settings, "postgres"), workdir, _clean_env(settings), query))


@pytest.fixture(scope="session", params=["duckdb", "postgres"])
def reporting(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltReporting]:
    """The MusicCorp reporting DB on one target, after a green `dbt build`."""
    workdir = tmp_path_factory.mktemp(f"dbt-{request.param}")
    yield from (_duckdb if request.param == "duckdb" else _postgres)(workdir)
