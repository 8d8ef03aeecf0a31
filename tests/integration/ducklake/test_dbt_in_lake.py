"""dbt builds the marts into the DuckLake itself (the `ducklake` target, run by the DuckLake venv's dbt on DuckDB
1.5.5), on a real lake (SQLite catalog, Parquet files) holding the MusicCorp dbt dataset in its contract tables:

- `reporting dbt build` (pipelines/dbt_cli.py `run_dbt`, the estate's environment from `dbt_env`) is green in
  the lake, every mart equals its own compiled SQL run over the contract tables, and equals the mart the
  DuckDB-file target builds from the same data (what the models compute does not depend on the target);
- a second engine reads a mart read-only while a writer holds an open transaction and while it commits;
- dbt runs while a writer commits batches into the same lake (the stream's apply, with its retries): both
  succeed; commits that collide with the writer's are retried (`dbt retry`), also deterministically by
  holding the SQLite catalog's write lock until dbt reports the collision, through the CLI and Dagster.

Timings of the two builds are printed (`-s`): they are the figures in docs/ducklake.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.apply.ducklake_backend import DuckLakeBackend
from pipelines.apply.runner import ducklake_target, load_parts
from pipelines.cdc.events import Record
from pipelines.contract.model import load_contracts
from pipelines.dbt_cli import run_dbt
from pipelines.defs.dbt import dbt_env, dbt_executable, dbt_target
from pipelines.settings import Settings
from tests.integration.dbt import musiccorp_dataset
from tests.support.databases import SHARED_DUCKLAKE_VENV, LakeWriter, temp_postgres
from tests.support.estate import bundled_estate, settings_for

# 3-4 min in all: in make test-ducklake, not make test (a clean-clone make test took 39 min 44 s with them)
pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARTS = ("dim_customers", "dim_products", "fct_daily_revenue", "fct_fulfilment_funnel", "fct_order_fulfilment",
         "fct_order_lines", "fct_orders_v1", "fct_orders_v2", "fct_payments", "fct_stock_levels", "fct_stock_outs",
         "fct_verification_funnel")
SESSION_TZ = "Europe/Berlin"  # dbt's sessions, as in tests/integration/dbt: UTC day boundaries are exercised
D = Decimal


def lake_settings(folder: Path) -> Settings:
    """A copy of the bundled estate on the ducklake backend, its lake under `folder` (shared engine venv)."""
    return settings_for(folder / "estate", **{
        "reporting.backend": "ducklake", "reporting.ducklake.catalog": str(folder / "lake" / "catalog.sqlite"),
        "reporting.ducklake.data_path": str(folder / "lake" / "data"), "reporting.ducklake.venv": str(SHARED_DUCKLAKE_VENV)})


def load_dataset(settings: Settings) -> None:
    """The MusicCorp dbt dataset into the lake's contract tables (keyless DDL), in one commit."""
    lake = DuckLakeBackend(ducklake_target(settings))
    try:
        lake.begin()
        # the dataset's DDL for dialect "ducklake" (no keys); its INSERTs mark parameters like psycopg's
        musiccorp_dataset.load(lambda sql, params: lake.execute(sql.replace("%s", "?"), params),
                               load_contracts(settings.estate.contracts), "ducklake", dt.datetime.now(dt.UTC))
        lake.commit()
    finally:
        lake.close()


def dbt(settings: Settings, workdir: Path, command: str, *args: str, say=None) -> tuple[int, str, float]:
    """`reporting dbt <command>` (run_dbt: the estate's dbt, target and variables); exit code, output, seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"dbt-{command}-{time.monotonic_ns()}.out"
    said: list[str] = []
    started = time.monotonic()
    with _environ(TZ=SESSION_TZ, DBT_USE_COLORS="false"), out.open("w") as sink:
        code = run_dbt(settings, command, [*args, "--target-path", str(workdir / "target"),
                                           "--log-path", str(workdir / "logs")],
                       say=say or said.append, stdout=sink)
    return code, out.read_text() + "\n".join(said), time.monotonic() - started


class _environ:
    """Variables set for the dbt child (run_dbt copies os.environ) and restored afterwards."""

    def __init__(self, **values: str) -> None:
        self.values, self.before = values, {}

    def __enter__(self):
        self.before = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *_: object) -> None:
        for k, v in self.before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def reader(settings: Settings) -> DuckLakeBackend:
    return DuckLakeBackend(ducklake_target(settings), read_only=True)


def _plain(rows: list[tuple]) -> list[tuple]:
    """Rows comparable across engines: aware datetimes in UTC, sorted (None first)."""
    def value(v):
        return v.astimezone(dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is not None else v
    return sorted((tuple(value(v) for v in row) for row in rows),
                  key=lambda r: tuple((v is not None, str(type(v)), v if v is not None else 0) for v in r))


def _writer_batches(n_events: int, seed: int, size: int) -> list[list[Record]]:
    from pipelines.bench.workload import orders_changes

    events = [Record("orders.public.orders", 0, i, k, v) for i, (k, v) in enumerate(orders_changes(n_events, 600, seed))]
    return [events[i:i + size] for i in range(0, len(events), size)]


@dataclass
class Lake:
    settings: Settings
    workdir: Path
    build_s: float
    output: str

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        r = reader(self.settings)
        try:
            return r.query(sql)
        finally:
            r.close()

    def artifact(self, name: str) -> dict[str, Any]:
        return json.loads((self.workdir / "target" / name).read_text())


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """The dataset in a fresh lake, after a green `reporting dbt build` on the ducklake target."""
    folder = tmp_path_factory.mktemp("dbt-lake")
    settings = lake_settings(folder)
    assert dbt_target(settings) == "ducklake"
    assert Path(dbt_executable(settings)) == SHARED_DUCKLAKE_VENV / "bin" / "dbt"
    load_dataset(settings)
    code, output, seconds = dbt(settings, folder / "dbt", "build")
    assert code == 0, output[-6000:]
    print(f"\ndbt build into the lake: {seconds:.1f} s")
    yield Lake(settings, folder / "dbt", seconds, output)


@pytest.fixture(scope="module")
def duckdb_file_marts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    """The same dataset built by the product's dbt into a DuckDB file (target duckdb): every mart's rows."""
    folder = tmp_path_factory.mktemp("dbt-file")
    path = folder / "reportingdb.duckdb"
    settings = settings_for(folder / "estate", **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(path)})
    musiccorp_dataset.load_duckdb_file(path, load_contracts(settings.estate.contracts))
    code, output, seconds = dbt(settings, folder / "dbt", "build")
    assert code == 0, output[-6000:]
    print(f"\ndbt build into the DuckDB file: {seconds:.1f} s")
    with duckdb.connect(str(path), read_only=True) as con:
        return {m: con.execute(f"select * from marts.{m}").fetchall() for m in MARTS}


def test_the_build_is_green_and_lands_in_the_lake(lake):
    results = lake.artifact("run_results.json")["results"]
    assert {r["status"] for r in results} <= {"success", "pass"}, [r for r in results if r["status"] not in ("success", "pass")]
    kinds = [r["unique_id"].split(".")[0] for r in results]
    assert kinds.count("model") == 7 + len(MARTS) and kinds.count("unit_test") == 3 and kinds.count("test") > 150
    rows = lake.query("select table_schema, table_name, table_type from information_schema.tables"
                      " where table_catalog = 'lake' and table_schema in ('staging', 'marts')")
    assert {n for s, n, _ in rows if s == "marts"} == {*MARTS, "fct_orders"}
    kinds_of = {(s, n): t for s, n, t in rows}
    assert kinds_of[("marts", "fct_orders")] == "VIEW" and kinds_of[("staging", "stg_orders")] == "VIEW"
    assert kinds_of[("marts", "fct_daily_revenue")] == "BASE TABLE"
    assert "PRIMARY KEY" not in (lake.workdir / "target" / "run" / "musiccorp_reporting" / "models" / "marts"
                                 / "fct_daily_revenue.sql").read_text()  # DuckLake has no keys: left out


def test_every_mart_equals_its_sql_over_the_contract_tables(lake):
    manifest = lake.artifact("manifest.json")
    compiled = lake.workdir / "target" / "compiled" / "musiccorp_reporting"
    r = reader(lake.settings)
    try:
        for node in manifest["nodes"].values():
            if node["resource_type"] != "model" or node["schema"] != "marts":
                continue
            sql = node.get("compiled_code") or (compiled / node["original_file_path"]).read_text()
            names, expected = r.query_described(sql)
            got = r.query(f"select {', '.join(names)} from lake.marts.{node['alias']}")
            assert _plain(got) == _plain(expected), node["alias"]
            assert got, node["alias"]
        live = r.query("select count(*), sum(total_amount) from lake.reporting.orders_v2 where _deleted_at is null")
        assert r.query("select count(*), sum(total_amount) from lake.marts.fct_orders") == live == [(6, D("206.97"))]
        assert r.query("select revenue_date, currency, net_revenue from lake.marts.fct_daily_revenue order by 1, 2") == [
            (dt.date(2024, 5, 1), "EUR", D("95.49")), (dt.date(2024, 5, 1), "GBP", D("0.00")),
            (dt.date(2024, 5, 2), "EUR", D("24.99"))]  # tests/integration/dbt's hand-computed figures
    finally:
        r.close()


def test_marts_equal_what_the_duckdb_file_target_builds(lake, duckdb_file_marts):
    for mart, rows in duckdb_file_marts.items():
        assert _plain(lake.query(f"select * from lake.marts.{mart}")) == _plain(rows), mart
    print(f"\ndbt build, same dataset: lake {lake.build_s:.1f} s")


def test_a_second_build_replaces_the_marts_in_place(lake):
    before = lake.query("select * from lake.marts.fct_daily_revenue order by 1, 2")
    code, output, _ = dbt(lake.settings, lake.workdir, "build", "--select", "marts")
    assert code == 0, output[-4000:]
    assert lake.query("select * from lake.marts.fct_daily_revenue order by 1, 2") == before
    assert lake.query("select count(*) from lake.marts.fct_orders") == [(6,)]


def test_a_mart_is_read_while_a_writer_holds_a_transaction_and_commits(lake):
    parts = load_parts(bundled_estate())
    writer = DuckLakeBackend(ducklake_target(lake.settings))
    writer.ensure_schema(list(parts.contracts.values()))  # the pipeline's own tables (_pipeline.*)
    r = reader(lake.settings)
    try:
        revenue = r.query("select * from lake.marts.fct_daily_revenue order by 1, 2")
        assert len(revenue) == 3
        writer.begin()
        writer.execute("DELETE FROM lake.marts.fct_daily_revenue")
        writer.execute("DELETE FROM lake.reporting.orders_v2")
        assert r.query("select * from lake.marts.fct_daily_revenue order by 1, 2") == revenue  # not the open one
        writer.rollback()
        orders = r.query("select count(*) from lake.reporting.orders_v2")[0][0]
        for batch in _writer_batches(200, 11, 100):
            writer.apply("dbt-reader-test", parts.plan(batch))
            assert r.query("select * from lake.marts.fct_daily_revenue order by 1, 2") == revenue
        assert r.query("select count(*) from lake.reporting.orders_v2")[0][0] > orders  # the commits are seen
    finally:
        r.close()
        writer.close()


def test_dbt_builds_into_a_lake_whose_catalog_is_in_postgres(tmp_path):
    """The catalog in a real PostgreSQL: dbt attaches it with the password in PGPASSWORD only (not in the
    catalog string dbt prints with its settings), and builds there."""
    with temp_postgres("dbtlake") as (cluster, conninfo):
        cluster.psql("CREATE DATABASE dbt_lake")
        password = conninfo.split("password=", 1)[1].split()[0]
        settings = settings_for(tmp_path / "estate", environ={"DBT_LAKE_PW": password}, **{
            "reporting.backend": "ducklake", "reporting.ducklake.catalog": None,
            "reporting.ducklake.postgres_catalog": {"host": "127.0.0.1", "port": cluster.port, "database": "dbt_lake",
                                                    "login": {"user": "postgres", "password": {"env": "DBT_LAKE_PW"}}},
            "reporting.ducklake.data_path": str(tmp_path / "lake" / "data"),
            "reporting.ducklake.venv": str(SHARED_DUCKLAKE_VENV)})
        env = dbt_env(settings)
        assert env["PGPASSWORD"] == password
        assert env["REPORTING_DUCKLAKE_CATALOG"].startswith("postgres:") and password not in env["REPORTING_DUCKLAKE_CATALOG"]
        assert "postgres_scanner" in env["REPORTING_DUCKLAKE_EXTENSIONS"]
        load_dataset(settings)
        code, output, _ = dbt(settings, tmp_path / "dbt", "run", "--select", "+fct_daily_revenue", "+fct_orders")
        assert code == 0, output[-6000:]
        assert password not in output + (tmp_path / "dbt" / "logs" / "dbt.log").read_text()
        r = reader(settings)
        try:
            assert r.query("select revenue_date, currency, net_revenue from lake.marts.fct_daily_revenue order by 1, 2") == [
                (dt.date(2024, 5, 1), "EUR", D("95.49")), (dt.date(2024, 5, 1), "GBP", D("0.00")),
                (dt.date(2024, 5, 2), "EUR", D("24.99"))]
            assert r.query("select count(*) from lake.marts.fct_orders") == [(6,)]
        finally:
            r.close()
    assert "PGPASSWORD" not in dbt_env(lake_settings(tmp_path / "sqlite"))  # a SQLite catalog needs none


def test_dbt_runs_while_a_writer_commits_into_the_same_lake(tmp_path):
    settings = lake_settings(tmp_path)
    load_dataset(settings)
    # the stream's apply in a thread, each batch retried on a commit that collided with dbt's
    writer = LakeWriter(ducklake_target(settings), load_parts(bundled_estate()), _writer_batches(20_000, 7, 50),
                        group="dbt-writer-test", attempts=9, max_wait_s=10.0, pause_s=0.1, ensure_schema=True)
    # (more batches than it can commit while dbt runs)
    writer.start()
    said: list[str] = []
    try:
        code, output, seconds = dbt(settings, tmp_path / "dbt", "run", say=said.append)
        applied_meanwhile = writer.applied
    finally:
        writer.stop.set()
        writer.join(timeout=300)
    assert writer.error is None, repr(writer.error)
    assert code == 0, output[-6000:]
    assert applied_meanwhile >= 10  # the two really overlapped
    print(f"\ndbt run while a writer committed {applied_meanwhile} batches: {seconds:.1f} s; "
          f"writer retries {len(writer.retried)}, dbt retry rounds {len(said)}")
    # with the writer stopped, the orders marts of the now quiet lake match their contract table
    code, output, _ = dbt(settings, tmp_path / "dbt", "run", "--select", "+fct_orders")
    assert code == 0, output[-6000:]
    r = reader(settings)
    try:
        assert r.query("select count(*), sum(total_amount) from lake.marts.fct_orders_v2") == r.query(
            "select count(*), sum(total_amount) from lake.reporting.orders_v2 where _deleted_at is null")
        assert r.query("select count(*) from lake.marts.fct_orders_v2")[0][0] > 6
    finally:
        r.close()


class CatalogLock(threading.Thread):
    """Holds the SQLite catalog's write lock (BEGIN IMMEDIATE: readers go on, commits get "database is locked")
    until `released_when()` is true, at most `max_s` seconds."""

    def __init__(self, catalog: Path, released_when, max_s: float = 300) -> None:
        super().__init__(daemon=True)
        self.catalog, self.released_when, self.max_s = catalog, released_when, max_s
        self.locked = threading.Event()

    def run(self) -> None:
        con = sqlite3.connect(self.catalog, isolation_level=None, timeout=30)
        try:
            con.execute("BEGIN IMMEDIATE")
            self.locked.set()
            deadline = time.monotonic() + self.max_s
            while not self.released_when() and time.monotonic() < deadline:
                time.sleep(0.2)
            con.execute("ROLLBACK")
        finally:
            con.close()


def _logs_say_locked(folder: Path) -> bool:
    for log in folder.rglob("dbt.log"):
        try:
            if "database is locked" in log.read_text(errors="replace"):
                return True
        except OSError:
            pass
    return False


def test_a_commit_that_collides_is_retried_by_reporting_dbt(tmp_path):
    """First on a fresh lake, where dbt's first commit creates the schema (before any node: the command runs
    again), then on the existing schema, where a node's commit fails (dbt retry)."""
    settings = lake_settings(tmp_path)
    load_dataset(settings)
    for round_, expected in enumerate(("before any node ran; running it again (1/5)", "dbt retry (1/5)")):
        logs = tmp_path / f"dbt{round_}" / "logs"
        lock = CatalogLock(settings.ducklake.catalog, lambda logs=logs: _logs_say_locked(logs))
        lock.start()
        assert lock.locked.wait(30)
        said: list[str] = []
        code, output, _ = dbt(settings, tmp_path / f"dbt{round_}", "run", "--select", "staging", say=said.append)
        lock.join(timeout=60)
        assert code == 0, output[-6000:]
        assert said and expected in said[0], said
    r = reader(settings)
    try:
        assert r.query("select count(*) from lake.staging.stg_orders") == [(6,)]
    finally:
        r.close()


def test_the_dagster_dbt_asset_builds_in_the_lake_and_retries_a_collision(tmp_path, monkeypatch):
    import dagster as dg

    from pipelines.defs.dbt import build_dbt_assets, dbt_resource
    from pipelines.defs.resources import ReportingResource

    # the run loads the estate again (ReportingResource): a REPORTING_BACKEND left in the environment (the e2e
    # suites' session overlay sets duckdb) would send dbt to the DuckDB target
    monkeypatch.setenv("REPORTING_BACKEND", "ducklake")
    settings = lake_settings(tmp_path)
    load_dataset(settings)
    lake = DuckLakeBackend(ducklake_target(settings))
    try:  # dbt's schemas exist, so the first commit dbt makes is a model's: the collision is a node's (dbt retry)
        lake.execute("CREATE SCHEMA lake.staging")
        lake.execute("CREATE SCHEMA lake.marts")
    finally:
        lake.close()
    monkeypatch.setenv("TZ", SESSION_TZ)
    assets = build_dbt_assets(settings)
    resource = dbt_resource(settings)
    assert resource.dbt_executable == str(SHARED_DUCKLAKE_VENV / "bin" / "dbt")
    defs = dg.Definitions(assets=[assets], jobs=[dg.define_asset_job("dbt_lake", selection=[assets])],
                          resources={"reporting": ReportingResource(estate=str(settings.estate.path)), "dbt": resource},
                          executor=dg.in_process_executor)
    started = time.time()
    project_target = settings.estate.dbt_project / "target"

    def dagster_dbt_logs_say_locked() -> bool:  # dagster-dbt logs into a fresh folder under the project's target/
        return any(p.stat().st_mtime >= started and "database is locked" in p.read_text(errors="replace")
                   for p in project_target.glob("*/dbt.log"))

    lock = CatalogLock(settings.ducklake.catalog, dagster_dbt_logs_say_locked)
    lock.start()
    assert lock.locked.wait(30)
    before = dict(os.environ)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("dbt_lake").execute_in_process(instance=instance, raise_on_error=False)
        lock.join(timeout=60)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        warnings = [e.message for e in instance.all_logs(result.run_id) if "dbt retry (1/5)" in (e.message or "")]
        assert warnings, "no commit collided: the lock was not seen by dbt"
        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["dbt", "fct_daily_revenue"]) in materialized and len(materialized) == 19
    assert dict(os.environ) == before
    r = reader(settings)
    try:
        assert len(r.query("select * from lake.marts.fct_daily_revenue")) == 3
    finally:
        r.close()
