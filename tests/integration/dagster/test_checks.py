"""Contract-table checks on real databases: conformance (information_schema), freshness (table_status),
dead letters; executed through Dagster like the UI does, and their rules directly."""

from __future__ import annotations

import datetime as dt
import itertools

import dagster as dg
import duckdb
import pytest

from pipelines.apply.postgres_backend import PostgresBackend
from pipelines.defs.checks import (
    CONFORMANCE_CHECK,
    DEAD_LETTER_CHECK,
    FRESHNESS_CHECK,
    ActualColumn,
    build_contract_checks,
    conformance_problems,
    dead_letter_summary,
    freshness_verdict,
    read_actual_columns,
)
from pipelines.defs.ingest import build_ingest_assets, live_contracts
from pipelines.defs.resources import ReportingResource
from tests.support.databases import temp_postgres

pytestmark = pytest.mark.integration

_dbs = itertools.count()


def contract(name: str):
    return next(c for c in live_contracts() if c.physical_name == name)


def run_checks(instance, check_keys: list[dg.AssetCheckKey]) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """Execute the given checks the way the UI's 'Execute checks' does (a job selecting only checks)."""
    contracts = live_contracts()
    checks = build_contract_checks(contracts, [])
    job = dg.define_asset_job("checks_under_test", selection=dg.AssetSelection.checks(*check_keys))
    defs = dg.Definitions(assets=[build_ingest_assets(contracts)], asset_checks=checks, jobs=[job],
                          resources={"reporting": ReportingResource()}, executor=dg.in_process_executor)
    result = defs.resolve_job_def("checks_under_test").execute_in_process(instance=instance)
    assert result.success
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def key(table: str, check: str) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(dg.AssetKey(["reporting", table]), check)


# --------------------------------------------------------------------------- conformance
def test_conformance_passes_on_the_tables_the_pipeline_creates(duckdb_with_schema, instance):
    names = [c.physical_name for c in live_contracts()]
    evals = run_checks(instance, [key(n, CONFORMANCE_CHECK) for n in names])
    assert {n for n, _ in evals} == set(names)
    failed = {n: e.description for (n, _), e in evals.items() if not e.passed}
    assert not failed


def test_conformance_fails_when_a_column_is_missing(duckdb_with_schema, instance):
    con = duckdb.connect(str(duckdb_with_schema))
    con.execute('ALTER TABLE reporting.orders_v2 DROP COLUMN "sales_channel"')
    con.execute('ALTER TABLE reporting.orders_v2 ADD COLUMN "internal_note" VARCHAR')
    con.close()
    evals = run_checks(instance, [key("orders_v2", CONFORMANCE_CHECK), key("orders_v1", CONFORMANCE_CHECK)])
    bad = evals[("orders_v2", CONFORMANCE_CHECK)]
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.ERROR
    assert bad.description == "orders_v2.sales_channel: missing (contract: varchar(32))"
    assert "orders_v2.internal_note: not in the contract" in bad.metadata["details"].value
    assert evals[("orders_v1", CONFORMANCE_CHECK)].passed


def test_conformance_fails_on_another_type(duckdb_with_schema):
    con = duckdb.connect(str(duckdb_with_schema))
    con.execute('ALTER TABLE reporting.payments_v1 ALTER COLUMN "amount" TYPE DOUBLE')
    actual = [ActualColumn(*r[:5], r[5] == "YES") for r in con.execute(
        "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, is_nullable "
        "FROM information_schema.columns WHERE table_schema='reporting' AND table_name='payments_v1'").fetchall()]
    con.close()
    problems, extra = conformance_problems(contract("payments_v1"), actual)
    assert problems == ["payments_v1.amount: type is double, contract says decimal(12,2)"] and extra == []


def test_conformance_on_postgresql_reads_lengths_and_precision():
    with temp_postgres("dagster-conf") as (cluster, conninfo):
        db = f"conf_{next(_dbs)}"
        cluster.psql(f"CREATE DATABASE {db}")
        backend = PostgresBackend(conninfo.replace("dbname=postgres", f"dbname={db}"))
        try:
            backend.ensure_schema(live_contracts())
            for c in live_contracts():
                assert conformance_problems(c, read_actual_columns(backend, c.physical_name)) == ([], [])
            backend.execute('ALTER TABLE reporting.customers_v1 ALTER COLUMN "country_code" TYPE varchar(3)')
            backend.execute('ALTER TABLE reporting.customers_v1 ALTER COLUMN "email" DROP NOT NULL')
            problems, _ = conformance_problems(contract("customers_v1"), read_actual_columns(backend, "customers_v1"))
        finally:
            backend.close()
    assert problems == ["customers_v1.email: nullable, contract says required",
                        "customers_v1.country_code: varchar(3), contract says varchar(2)"]


def test_conformance_of_a_missing_table_fails(reporting_env, instance):
    from pipelines.apply.duckdb_backend import DuckDbBackend

    DuckDbBackend(reporting_env / "reportingdb.duckdb").close()  # an empty file: no tables
    evals = run_checks(instance, [key("orders_v1", CONFORMANCE_CHECK)])
    e = evals[("orders_v1", CONFORMANCE_CHECK)]
    assert not e.passed and e.description == "reporting.orders_v1 does not exist"


# --------------------------------------------------------------------------- freshness
def test_freshness_verdict_rules():
    now = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert freshness_verdict(300, now - dt.timedelta(seconds=299), now)[0]
    passed, age, text = freshness_verdict(300, now - dt.timedelta(seconds=301), now)
    assert not passed and age == 301 and text == "newest change is 301s old, beyond the objective of 300s"
    assert freshness_verdict(300, None, now)[0] is False


def test_freshness_check_passes_and_fails_from_table_status(duckdb_with_schema, instance):
    con = duckdb.connect(str(duckdb_with_schema))
    con.execute("INSERT INTO _pipeline.table_status (physical_name, newest_source_ts, rows_applied) VALUES "
                "('orders_v1', now() - INTERVAL 10 SECOND, 1), ('orders_v2', now() - INTERVAL 2 DAY, 1)")
    con.close()
    evals = run_checks(instance, [key(n, FRESHNESS_CHECK) for n in ("orders_v1", "orders_v2", "payments_v1")])
    assert evals[("orders_v1", FRESHNESS_CHECK)].passed
    stale = evals[("orders_v2", FRESHNESS_CHECK)]
    assert not stale.passed and "beyond the objective" in stale.description
    assert stale.metadata["age_s"].value > 86400
    never = evals[("payments_v1", FRESHNESS_CHECK)]
    assert not never.passed and never.severity == dg.AssetCheckSeverity.WARN
    assert never.description.startswith("no change applied yet")


# --------------------------------------------------------------------------- dead letters
def test_dead_letter_summary_attributes_undecodable_events_to_the_tables_of_their_source():
    feeds = {"public.orders": ["orders_v1", "orders_v2"], "orders.public.orders": ["orders_v1", "orders_v2"]}
    rows = [("orders_v2", "public.orders", "orders.public.orders", "validate: currency 'EURO' too long", 1),
            (None, None, "orders.public.orders", "decode: not JSON", 2)]
    summary = dead_letter_summary(rows, feeds)
    assert summary["orders_v2"].count == 2 and summary["orders_v2"].newest_reason == "decode: not JSON"
    assert summary["orders_v1"].count == 1


def test_dead_letter_check_reports_count_and_newest_reason(duckdb_with_schema, instance):
    con = duckdb.connect(str(duckdb_with_schema))
    con.execute("INSERT INTO _pipeline.dead_letters (topic, kafka_partition, kafka_offset, stage, reason, "
                "source_table, target_table, first_seen_at) VALUES "
                "('orders.public.orders', 0, 7, 'validate', 'orders_v1.currency: value too long', 'public.orders', "
                "'orders_v1', now())")
    con.close()
    evals = run_checks(instance, [key("orders_v1", DEAD_LETTER_CHECK), key("payments_v1", DEAD_LETTER_CHECK)])
    e = evals[("orders_v1", DEAD_LETTER_CHECK)]
    assert not e.passed
    assert e.metadata["dead_letters"].value == 1
    assert e.metadata["newest_reason"].value == "orders_v1.currency: value too long"
    assert evals[("payments_v1", DEAD_LETTER_CHECK)].passed
