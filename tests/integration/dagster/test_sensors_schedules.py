"""Sensors and schedules evaluate against a temp instance and a temp reporting DuckDB."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import duckdb
import pytest

from pipelines.config.load import load_estate
from pipelines.defs import sensors
from pipelines.defs.checks import DEAD_LETTER_CHECK
from pipelines.defs.connectors import CONNECTOR_CHECK
from pipelines.defs.resources import POOL, ReportingResource
from pipelines.defs.schedules import build_schedules
from pipelines.defs.sensors import (
    connector_health_sensor,
    consumer_lag_sensor,
    dead_letter_sensor,
    pool_wait_sensor,
    total_lag,
    wait_message,
)

pytestmark = pytest.mark.integration


def ctx(instance, cursor=None):
    return dg.build_sensor_context(instance=instance, cursor=cursor, resources={"reporting": ReportingResource()})


def add_dead_letter(path, fed, target: str, reason: str) -> None:
    topic, source_table, _ = fed
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO _pipeline.dead_letters (topic, kafka_partition, kafka_offset, stage, reason, source_table, "
                "target_table, first_seen_at) VALUES (?, 0, 1, 'validate', ?, ?, ?, now())",
                [topic, reason, source_table, target])
    con.close()


def check_events(result: dg.SensorResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_key.path[-1]: e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)}


# --------------------------------------------------------------------------- dead letters
def test_dead_letter_sensor_reports_a_failed_check_with_count_and_newest_reason(duckdb_with_schema, instance, fed):
    table = fed[2][-1]
    add_dead_letter(duckdb_with_schema, fed, table, f"{table}.status: 'LOST' is not an allowed value")
    add_dead_letter(duckdb_with_schema, fed, table, f"{table}.currency: value 'EURO' longer than 3")
    first = dead_letter_sensor(ctx(instance))
    evals = check_events(first)
    assert set(evals) == {table}
    e = evals[table]
    assert e.check_name == DEAD_LETTER_CHECK and not e.passed
    assert e.metadata["dead_letters"].value == 2
    assert e.metadata["newest_reason"].value == f"{table}.currency: value 'EURO' longer than 3"
    assert f"2 pending dead letter(s) for {table}" in e.description
    observations = [o for o in first.asset_events if isinstance(o, dg.AssetObservation)]
    assert observations[0].metadata["dead_letters"].value == 2
    assert json.loads(first.cursor) == {table: 2}

    unchanged = dead_letter_sensor(ctx(instance, first.cursor))
    assert not unchanged.asset_events and "unchanged" in unchanged.skip_reason.skip_message

    con = duckdb.connect(str(duckdb_with_schema))
    con.execute("UPDATE _pipeline.dead_letters SET replayed_at = now()")
    con.close()
    cleared = check_events(dead_letter_sensor(ctx(instance, first.cursor)))
    assert cleared[table].passed


def test_dead_letter_sensor_skips_while_a_run_holds_the_pool(duckdb_with_schema, instance):
    instance.event_log_storage.set_concurrency_slots(POOL, 1)
    instance.event_log_storage.claim_concurrency_slot(POOL, "run-holding-the-db", "ingest_contract_tables")
    result = dead_letter_sensor(ctx(instance))
    assert isinstance(result, dg.SkipReason) and "in use by run run-hold" in result.skip_message


def test_dead_letter_sensor_skips_when_another_process_writes_duckdb(duckdb_with_schema, instance):
    writer = duckdb.connect(str(duckdb_with_schema))  # this process holds the write lock
    try:
        import multiprocessing

        ctx_mp = multiprocessing.get_context("spawn")
        with ctx_mp.Pool(1) as pool:
            message = pool.apply(_sensor_skip_message_in_other_process, (str(duckdb_with_schema),))
    finally:
        writer.close()
    assert "locked by another process" in message


def _sensor_skip_message_in_other_process(path: str) -> str:
    with dg.instance_for_test() as inst:
        res = dead_letter_sensor(ctx(inst))
        return res.skip_message if isinstance(res, dg.SkipReason) else repr(res)


# --------------------------------------------------------------------------- connector health
def test_connector_sensor_fails_the_check_when_connect_is_down(estate, instance):
    result = connector_health_sensor(ctx(instance))
    evals = {e.asset_key.path[-1]: e for e in result.asset_events}
    assert set(evals) == set(estate.service_names)
    for e in evals.values():
        assert e.check_name == CONNECTOR_CHECK and not e.passed
        assert e.metadata["state"].value == "UNREACHABLE"
        assert "not reachable" in e.metadata["trace"].value
    again = connector_health_sensor(ctx(instance, result.cursor))
    assert not again.asset_events


# --------------------------------------------------------------------------- consumer lag
def test_total_lag_counts_unread_partitions_from_their_beginning():
    ends = {("orders.public.orders", 0): 120, ("orders.public.order_lines", 0): 40}
    assert total_lag({("orders.public.orders", 0): 100}, ends, {("orders.public.order_lines", 0): 10}) == 20 + 30


def test_lag_sensor_skips_when_kafka_is_down(duckdb_with_schema, instance):
    result = consumer_lag_sensor(ctx(instance))
    assert isinstance(result, dg.SkipReason) and "Kafka not reachable" in result.skip_message


@pytest.mark.parametrize(("threshold", "requested"), [(7, True), (8, False)])
def test_lag_sensor_compares_with_the_estates_threshold(estate_file, instance, monkeypatch, threshold, requested):
    from pipelines.projection import load_estate_projections

    estate_file(**{"pipeline.lag_threshold": threshold})
    estate = load_estate()
    topics = sorted(load_estate_projections(estate))
    asked = {}

    def offsets(client, wanted):  # Kafka stand-in: 8 unread events on the first topic
        asked.update(client=client, topics=wanted)
        return {(topics[0], 0): 8}, {(topics[0], 0): 0}

    monkeypatch.setattr(sensors, "topic_offsets", offsets)
    result = consumer_lag_sensor(ctx(instance))
    assert asked["topics"] == topics  # every topic the estate's projections read
    assert asked["client"]["bootstrap_servers"] == list(estate.kafka.bootstrap_servers)
    if requested:
        assert isinstance(result, dg.RunRequest) and result.tags["reporting/lag"] == "8"
    else:
        assert isinstance(result, dg.SkipReason) and result.skip_message == f"consumer lag 8 <= threshold {threshold}"


def test_lag_sensor_skips_while_an_ingest_run_is_queued(reporting_env, instance, definitions):
    job = definitions.resolve_job_def("ingest_job")
    instance.create_run_for_job(job, status=dg.DagsterRunStatus.NOT_STARTED)
    result = consumer_lag_sensor(ctx(instance))
    assert isinstance(result, dg.SkipReason) and "already queued or running" in result.skip_message


# --------------------------------------------------------------------------- pool waits
def test_pool_wait_message_names_the_holder_and_the_reason():
    text = wait_message("dbt_build_job", "0123456789abcdef", "ingest_job", "/x/reportingdb.duckdb")
    assert text.startswith(f"Waiting for pool {POOL} (limit 1): run 01234567 (ingest_job) is using it.")
    assert "DuckDB allows a single writing process" in text


def queued_run(job_name: str):
    """A QUEUED run whose root step needs the pool, as the webserver creates it (remote origin, pools)."""
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.storage.dagster_run import DagsterRun, RunOpConcurrency
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="pipelines.definitions", attribute="defs"))
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job_name)
    return DagsterRun(job_name=job_name, status=dg.DagsterRunStatus.QUEUED, remote_job_origin=origin,
                      run_op_concurrency=RunOpConcurrency(root_key_counts={POOL: 1}, has_unconstrained_root_nodes=False,
                                                          all_pools={POOL}))


def test_pool_wait_sensor_writes_the_message_into_a_queued_run(reporting_env, instance, definitions):
    instance.event_log_storage.set_concurrency_slots(POOL, 1)
    holder = instance.create_run_for_job(definitions.resolve_job_def("ingest_job"), status=dg.DagsterRunStatus.STARTED)
    instance.event_log_storage.claim_concurrency_slot(POOL, holder.run_id, "ingest_contract_tables")
    waiting = instance.add_run(queued_run("dbt_build_job"))
    result = pool_wait_sensor(ctx(instance))
    assert "told 1 waiting run" in result.skip_reason.skip_message
    messages = [e.message for e in instance.all_logs(waiting.run_id)]
    assert any(m and m.startswith(f"Waiting for pool {POOL}") and holder.run_id[:8] in m for m in messages)
    again = pool_wait_sensor(ctx(instance, result.cursor))
    assert "no run waits" in again.skip_reason.skip_message


def test_pool_wait_sensor_is_quiet_without_queued_runs(reporting_env, instance):
    result = pool_wait_sensor(ctx(instance))
    assert "no run waits" in result.skip_reason.skip_message


# --------------------------------------------------------------------------- schedules
def test_schedules_request_their_jobs(estate, instance):
    schedules = {s.name: s for s in build_schedules(estate.dagster.schedules, with_reconcile=True)}
    assert schedules["dbt_build_schedule"].cron_schedule == estate.dagster.schedules.dbt_build
    assert schedules["reconcile_schedule"].cron_schedule == estate.dagster.schedules.reconcile
    when = dt.datetime(2026, 5, 1, 3, 30, tzinfo=dt.UTC)
    for name, job in (("dbt_build_schedule", "dbt_build_job"), ("reconcile_schedule", "reconcile_job")):
        s = schedules[name]
        data = s.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
        assert len(data.run_requests) == 1 and s.job_name == job


def test_cron_and_time_zone_come_from_the_estate(estate_file):
    estate_file(**{"dagster.schedules": {"timezone": "America/New_York", "dbt_build": "*/15 * * * *",
                                         "reconcile": "0 5 * * *"}})
    schedules = {s.name: s for s in build_schedules(load_estate().dagster.schedules, with_reconcile=True)}
    assert schedules["dbt_build_schedule"].cron_schedule == "*/15 * * * *"
    assert schedules["reconcile_schedule"].cron_schedule == "0 5 * * *"
    assert {s.execution_timezone for s in schedules.values()} == {"America/New_York"}
    unreconciled = build_schedules(load_estate().dagster.schedules, with_reconcile=False)  # nothing to reconcile
    assert [s.name for s in unreconciled] == ["dbt_build_schedule"]


# --------------------------------------------------------------------------- the resource
def test_reporting_resource_reads_the_estate_and_leaves_the_environment_alone(estate_file, monkeypatch):
    import os

    path = estate_file(**{"pipeline.planners": 2, "pipeline.consumer_group": "estate-group"})
    monkeypatch.delenv("REPORTING_ESTATE")
    before = dict(os.environ)
    res = ReportingResource(estate=str(path), backend="postgres")
    settings = res.settings()
    assert os.environ == before
    assert settings.estate.path == path and settings.backend == "postgres"
    assert res.planner_count(settings) == 2 and res.group(settings) == "estate-group"
    assert ReportingResource(estate=str(path), planners=0, consumer_group="g").planner_count(settings) == 0
    assert ReportingResource(estate=str(path), consumer_group="g").group(settings) == "g"
    default = ReportingResource(estate=str(path)).settings()
    assert default.backend == load_estate(path).reporting.backend == "duckdb"
    client = ReportingResource(estate=str(path)).connect_client(default)
    assert client.url == default.estate.connect.url
