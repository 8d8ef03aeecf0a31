"""The UI's instance config (queued runs, the reporting DB pool), the jobs' own logic (re-snapshot
signal, catalog, replay) on real files and a real DuckDB."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from pipelines.defs.catalog import contract_catalog
from pipelines.defs.jobs import replay_dead_letters_job, resnapshot_table_job
from pipelines.defs.resources import POOL, ReportingResource
from pipelines.defs.snapshot import SnapshotSignalError, config_problems, resolve_target, snapshot_signal
from pipelines.projection import load_projections
from pipelines.settings import REPO_ROOT, Settings
from pipelines.ui import MAX_CONCURRENT_RUNS, _set_pool_limit, instance_yaml, ui_env, workspace_yaml

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


def test_ui_env_pins_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTING_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("REPORTING_PORT_OFFSET", "100")
    settings = Settings.load()
    env = ui_env(settings, tmp_path / "dagster")
    assert env["DAGSTER_HOME"] == str(tmp_path / "dagster")
    assert env["REPORTING_PORT_CONNECT"] == str(settings.ports["connect"])
    assert env["REPORTING_DUCKDB_PATH"] == str(settings.duckdb_path)
    assert f"working_directory: {REPO_ROOT}" in workspace_yaml()


# --------------------------------------------------------------------------- re-snapshot
def test_resnapshot_target_resolution():
    projections = load_projections(REPO_ROOT / "connectors")
    t = resolve_target("orders_v1", projections)
    assert (t.service, t.source_tables) == ("orders", ("public.orders",))
    assert set(t.contract_tables) == {"orders_v1", "orders_v2"}
    assert resolve_target("orders", projections).source_tables == ("public.orders",)
    assert resolve_target("public.order_lines", projections).contract_tables == ("order_lines_v1",)
    with pytest.raises(SnapshotSignalError, match="no projection feeds 'nothing_v9'"):
        resolve_target("nothing_v9", projections)


def test_resnapshot_signal_and_connector_requirements():
    signal = snapshot_signal(("public.orders",), "incremental", signal_id="s1")
    assert signal == {"id": "s1", "type": "execute-snapshot",
                      "data": {"data-collections": ["public.orders"], "type": "incremental"}}
    plain = {"topic.prefix": "orders"}
    assert config_problems(plain, "incremental") == [
        "signal.enabled.channels must include 'kafka'",
        "signal.kafka.bootstrap.servers must be set (e.g. ${env:REPORTING_KAFKA_BOOTSTRAP})",
        "an incremental snapshot needs read.only=true (no signal table) or signal.data.collection"]
    ready = {**plain, "signal.enabled.channels": "source,kafka", "signal.kafka.bootstrap.servers": "k:9092",
             "read.only": "true"}
    assert config_problems(ready, "incremental") == []
    assert config_problems({**ready, "read.only": "false"}, "blocking") == []


def test_resnapshot_job_fails_readably_when_connect_is_down(reporting_env, instance):
    result = resnapshot_table_job.execute_in_process(
        run_config={"ops": {"resnapshot_table": {"config": {"table": "orders_v1"}}}},
        resources={"reporting": ReportingResource()}, instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure.description.startswith("Kafka Connect at http://127.0.0.1:")
    assert failure.description.endswith("is not reachable: ConnectionError")


# --------------------------------------------------------------------------- catalog, replay
def test_catalog_asset_writes_the_markdown_catalog(reporting_env, instance, monkeypatch):
    out = reporting_env / "published" / "catalog.md"
    monkeypatch.setenv("REPORTING_CATALOG_PATH", str(out))
    result = dg.materialize([contract_catalog], resources={"reporting": ReportingResource()}, instance=instance)
    assert result.success
    text = out.read_text()
    assert text.startswith("# Reporting data catalog") and "## orders_v2" in text
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["contracts"].value >= 8


def test_replay_job_applies_what_now_succeeds_and_fails_on_the_rest(duckdb_with_schema, instance):
    con = duckdb.connect(str(duckdb_with_schema))
    con.execute("INSERT INTO _pipeline.dead_letters (topic, kafka_partition, kafka_offset, stage, reason, source_table, "
                "target_table, record_key, record_value, first_seen_at) VALUES ('orders.public.orders', 0, 3, 'decode', "
                "'not JSON', 'public.orders', NULL, NULL, 'not json'::BLOB, now())")
    con.close()
    result = replay_dead_letters_job.execute_in_process(resources={"reporting": ReportingResource()},
                                                        instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data
    assert "replayed 0 of 1 dead letter(s)" in failure.user_failure_data.description
    con = duckdb.connect(str(duckdb_with_schema), read_only=True)
    assert con.execute("SELECT retries FROM _pipeline.dead_letters").fetchone()[0] == 1
    con.close()
