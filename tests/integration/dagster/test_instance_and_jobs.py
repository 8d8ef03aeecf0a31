"""The UI's instance config (queued runs, the reporting DB pool), the jobs' own logic (re-snapshot
signal, catalog, replay) on real files and a real DuckDB."""

from __future__ import annotations

import os

import dagster as dg
import duckdb
import pytest

from pipelines.config.load import BUNDLED_ESTATE, load_estate
from pipelines.connect.signals import SnapshotSignalError, config_problems, resolve_target, snapshot_signal
from pipelines.contract.model import load_contracts
from pipelines.defs.catalog import contract_catalog
from pipelines.defs.jobs import replay_dead_letters_job, resnapshot_table_job
from pipelines.defs.resources import POOL, ReportingResource
from pipelines.projection import load_estate_projections
from pipelines.settings import Settings
from pipelines.ui import (
    CODE_ROOT,
    MAX_CONCURRENT_RUNS,
    _set_pool_limit,
    dagster_home,
    instance_yaml,
    stop_ui,
    ui_env,
    ui_processes_left,
    workspace_yaml,
)
from tests.integration.dagster.conftest import OVERRIDES
from tests.support.estate import write_estate

pytestmark = pytest.mark.integration


def test_ui_instance_queues_runs_and_limits_the_pool_to_one(tmp_path):
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(home))
    _set_pool_limit(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == MAX_CONCURRENT_RUNS
        info = instance.event_log_storage.get_concurrency_info(POOL)
        assert info.slot_count == 1
        pool_config = instance.event_log_storage.get_pool_config()
        assert pool_config.default_pool_limit == 1
        assert pool_config.pool_granularity.value == "op"
        assert instance.get_settings("telemetry") == {"enabled": False}


def test_ui_env_carries_the_estate_to_the_ui_processes(tmp_path, monkeypatch):
    for name in (*OVERRIDES, "REPORTING_ESTATE"):
        monkeypatch.delenv(name, raising=False)
    chosen = write_estate(tmp_path / "chosen")
    monkeypatch.setenv("REPORTING_ESTATE", str(BUNDLED_ESTATE))  # the caller's default: not what it chose
    monkeypatch.setenv("REPORTING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("REPORTING_PORT_OFFSET", "100")
    settings = Settings.load(chosen)
    home = dagster_home(settings)
    assert home == settings.estate.dagster.home
    env = ui_env(settings, home)
    assert env["DAGSTER_HOME"] == str(home)
    assert env["REPORTING_ESTATE"] == str(chosen)
    assert env["REPORTING_STATE_DIR"] == str(settings.state_dir)
    assert env["REPORTING_PORT_OFFSET"] == "100"
    assert not [k for k in env if k.startswith("REPORTING_PORT_") and k != "REPORTING_PORT_OFFSET"
                and k not in os.environ]
    child = Settings.load(environ=env)  # what the webserver, daemon and code location load
    assert child.estate == settings.estate
    assert child.ports == settings.ports and child.estate.dagster.port == settings.estate.dagster.port
    assert f"working_directory: {CODE_ROOT}" in workspace_yaml()


def test_ui_env_without_overrides_only_names_the_estate(tmp_path, monkeypatch):
    for name in (*OVERRIDES, "REPORTING_ESTATE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.load()
    env = ui_env(settings, dagster_home(settings))
    assert env["REPORTING_ESTATE"] == str(BUNDLED_ESTATE.resolve())
    assert not {name for name in OVERRIDES if name in env}
    assert Settings.load(environ=env).estate == settings.estate


def test_stop_ui_also_ends_processes_started_after_the_trees_were_listed(tmp_path, monkeypatch):
    """A run worker's dbt (or its multiprocessing helper) outside the daemon's and webserver's trees, e.g.
    orphaned while the worker was being stopped: it carries DAGSTER_HOME, and stop_ui ends it."""
    import subprocess
    import sys

    for name in (*OVERRIDES, "REPORTING_ESTATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REPORTING_STATE_DIR", str(tmp_path / "state"))
    settings = Settings.load(write_estate(tmp_path / "estate"))
    home = dagster_home(settings)
    home.mkdir(parents=True)
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                              env={**os.environ, "DAGSTER_HOME": str(home)}, start_new_session=True)
    try:
        assert [line.split()[0] for line in ui_processes_left(settings)] == [str(orphan.pid)]
        said: list[str] = []
        assert stop_ui(settings, say=said.append) is False  # no daemon or webserver pid file
        assert orphan.wait(timeout=20) is not None
        assert ui_processes_left(settings) == []
        assert said == [f"stopping 1 process(es) the Dagster UI started: {orphan.pid}"]
    finally:
        orphan.kill()


# --------------------------------------------------------------------------- re-snapshot
def test_resnapshot_target_resolution():
    projections = load_estate_projections(load_estate(BUNDLED_ESTATE, environ={}))
    topic, tp = sorted(projections.items())[0]
    same_source = [p for p in projections.values() if p.source_table == tp.source_table and p.service == tp.service]
    fed = {t.physical_name for p in same_source for t in p.targets}
    target = tp.targets[0].physical_name
    t = resolve_target(target, projections)
    assert t.service == tp.service and tp.source_table in t.source_tables and target in t.contract_tables
    contract_name = target.rsplit("_v", 1)[0]  # every major of the contract
    assert tp.source_table in resolve_target(contract_name, projections).source_tables
    by_source = resolve_target(tp.source_table, projections)
    assert by_source.source_tables == (tp.source_table,) and set(by_source.contract_tables) == fed
    assert resolve_target(topic, projections).source_tables == (tp.source_table,)
    with pytest.raises(SnapshotSignalError, match="no projection feeds 'nothing_v9'"):
        resolve_target("nothing_v9", projections)


def test_resnapshot_signal_and_connector_requirements():
    signal = snapshot_signal(("public.orders",), "incremental", signal_id="s1")
    assert signal == {"id": "s1", "type": "execute-snapshot",
                      "data": {"data-collections": ["public.orders"], "type": "incremental"}}
    plain = {"topic.prefix": "orders"}
    assert config_problems(plain, "incremental") == [
        "signal.enabled.channels must include 'kafka'",
        "signal.kafka.bootstrap.servers must be set (the estate's kafka.bootstrap_servers: register the "
        "connector again)",
        "an incremental snapshot needs read.only=true (no signal table) or signal.data.collection"]
    ready = {**plain, "signal.enabled.channels": "source,kafka", "signal.kafka.bootstrap.servers": "k:9092",
             "read.only": "true"}
    assert config_problems(ready, "incremental") == []
    assert config_problems({**ready, "read.only": "false"}, "blocking") == []


def test_resnapshot_job_fails_readably_when_connect_is_down(estate, instance, fed):
    result = resnapshot_table_job.execute_in_process(
        run_config={"ops": {"resnapshot_table": {"config": {"table": fed[2][0]}}}},
        resources={"reporting": ReportingResource()}, instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure.description == f"Kafka Connect at {estate.connect.url} is not reachable: ConnectionError"


# --------------------------------------------------------------------------- catalog, replay
def test_catalog_asset_writes_the_markdown_catalog(estate, instance):
    result = dg.materialize([contract_catalog], resources={"reporting": ReportingResource()}, instance=instance)
    assert result.success
    out = estate.state_dir / "published" / "contract_catalog.md"
    text = out.read_text()
    contracts = load_contracts(estate.contracts)
    assert text.startswith("# Reporting data catalog")
    assert all(f"\n## {c.physical_name}\n" in text for c in contracts)
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["contracts"].value == len(contracts)
    assert meta["path"].value == str(out)


def test_replay_job_applies_what_now_succeeds_and_fails_on_the_rest(duckdb_with_schema, instance, fed):
    topic, source_table, _ = fed
    con = duckdb.connect(str(duckdb_with_schema))
    con.execute("INSERT INTO _pipeline.dead_letters (topic, kafka_partition, kafka_offset, stage, reason, source_table, "
                "target_table, record_key, record_value, first_seen_at) VALUES (?, 0, 3, 'decode', "
                "'not JSON', ?, NULL, NULL, 'not json'::BLOB, now())", [topic, source_table])
    con.close()
    result = replay_dead_letters_job.execute_in_process(resources={"reporting": ReportingResource()},
                                                        instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data
    assert "replayed 0 of 1 dead letter(s)" in failure.user_failure_data.description
    con = duckdb.connect(str(duckdb_with_schema), read_only=True)
    assert con.execute("SELECT retries FROM _pipeline.dead_letters").fetchone()[0] == 1
    con.close()


# --------------------------------------------------------------------------- dbt
def test_dbt_job_builds_the_estates_reporting_db_and_leaves_the_environment_alone(duckdb_with_schema, instance):
    """dbt's profile variables come from the estate (dbt_env) for the one dbt invocation only."""
    from pipelines.defs.dbt import build_dbt_assets, dbt_resource

    settings = Settings.load()
    assert settings.duckdb_path == duckdb_with_schema
    dbt = build_dbt_assets(settings)
    defs = dg.Definitions(assets=[dbt], jobs=[dg.define_asset_job("dbt_under_test", selection=[dbt])],
                          resources={"reporting": ReportingResource(), "dbt": dbt_resource(settings)},
                          executor=dg.in_process_executor)
    before = dict(os.environ)
    result = defs.resolve_job_def("dbt_under_test").execute_in_process(instance=instance)
    assert result.success
    assert dict(os.environ) == before
    con = duckdb.connect(str(duckdb_with_schema), read_only=True)
    try:
        built = {r[0] for r in con.execute("SELECT table_schema FROM information_schema.tables").fetchall()}
    finally:
        con.close()
    assert {"staging", "marts"} <= built  # dbt built into the estate's DuckDB file, not another one
