"""Contract-table checks on real databases: conformance (information_schema), freshness (table_status),
dead letters; executed through Dagster like the UI does, and their rules directly."""

from __future__ import annotations

import datetime as dt
import itertools

import dagster as dg
import duckdb
import pytest

from pipelines.apply.postgres_backend import PostgresBackend
from pipelines.config.load import load_estate
from pipelines.contract.model import Column
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


def contracts():
    """The live contract tables of the estate in use (REPORTING_ESTATE, else the bundled one)."""
    return live_contracts(load_estate())


def run_checks(instance, check_keys: list[dg.AssetCheckKey]) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """Execute the given checks the way the UI's 'Execute checks' does (a job selecting only checks)."""
    estate = load_estate()
    live = live_contracts(estate)
    checks = build_contract_checks(live, [])
    job = dg.define_asset_job("checks_under_test", selection=dg.AssetSelection.checks(*check_keys))
    defs = dg.Definitions(assets=[build_ingest_assets(live, estate)], asset_checks=checks, jobs=[job],
                          resources={"reporting": ReportingResource()}, executor=dg.in_process_executor)
    result = defs.resolve_job_def("checks_under_test").execute_in_process(instance=instance)
    assert result.success
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def key(table: str, check: str) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(dg.AssetKey(["reporting", table]), check)


def expected_text(col: Column) -> str:
    return col.physical_type + (" not null" if col.required else "")


def with_column(predicate):
    """(contract, column): the first live contract table with a non-key column matching `predicate`."""
    for c in contracts():
        for col in c.columns:
            if not col.primary_key and predicate(col):
                return c, col
    pytest.skip("no contract of this estate has such a column")


# --------------------------------------------------------------------------- conformance
def test_conformance_passes_on_the_tables_the_pipeline_creates(duckdb_with_schema, instance):
    names = [c.physical_name for c in contracts()]
    evals = run_checks(instance, [key(n, CONFORMANCE_CHECK) for n in names])
    assert {n for n, _ in evals} == set(names)
    failed = {n: e.description for (n, _), e in evals.items() if not e.passed}
    assert not failed


def test_conformance_fails_when_a_column_is_missing(duckdb_with_schema, instance):
    bad_contract, dropped = with_column(lambda col: True)
    table = bad_contract.physical_name
    other = next(c.physical_name for c in contracts() if c.physical_name != table)
    con = duckdb.connect(str(duckdb_with_schema))
    con.execute(f'ALTER TABLE reporting.{table} DROP COLUMN "{dropped.name}"')
    con.execute(f'ALTER TABLE reporting.{table} ADD COLUMN "internal_note" VARCHAR')
    con.close()
    evals = run_checks(instance, [key(table, CONFORMANCE_CHECK), key(other, CONFORMANCE_CHECK)])
    bad = evals[(table, CONFORMANCE_CHECK)]
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.ERROR
    assert bad.description == f"{table}.{dropped.name}: missing (contract: {expected_text(dropped)})"
    assert f"{table}.internal_note: not in the contract" in bad.metadata["details"].value
    assert evals[(other, CONFORMANCE_CHECK)].passed


def test_conformance_fails_on_another_type(duckdb_with_schema):
    c, col = with_column(lambda col: col.base_type == "decimal")
    con = duckdb.connect(str(duckdb_with_schema))
    con.execute(f'ALTER TABLE reporting.{c.physical_name} ALTER COLUMN "{col.name}" TYPE DOUBLE')
    actual = [ActualColumn(*r[:5], r[5] == "YES") for r in con.execute(
        "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, is_nullable "
        "FROM information_schema.columns WHERE table_schema='reporting' AND table_name=?", [c.physical_name]).fetchall()]
    con.close()
    problems, extra = conformance_problems(c, actual)
    assert problems == [f"{c.physical_name}.{col.name}: type is double, contract says {col.physical_type}"]
    assert extra == []


def test_conformance_on_postgresql_reads_lengths_and_precision():
    c, varchar = with_column(lambda col: col.base_type == "varchar" and col.length is not None)
    required = next((col for col in c.columns if col.required and not col.primary_key and col is not varchar), None)
    with temp_postgres("dagster-conf") as (cluster, conninfo):
        db = f"conf_{next(_dbs)}"
        cluster.psql(f"CREATE DATABASE {db}")
        backend = PostgresBackend(conninfo.replace("dbname=postgres", f"dbname={db}"))
        try:
            backend.ensure_schema(contracts())
            for each in contracts():
                assert conformance_problems(each, read_actual_columns(backend, each.physical_name)) == ([], [])
            backend.execute(f'ALTER TABLE reporting.{c.physical_name} ALTER COLUMN "{varchar.name}" '
                            f"TYPE varchar({varchar.length + 1})")
            if required is not None:
                backend.execute(f'ALTER TABLE reporting.{c.physical_name} ALTER COLUMN "{required.name}" DROP NOT NULL')
            problems, _ = conformance_problems(c, read_actual_columns(backend, c.physical_name))
        finally:
            backend.close()
    expected = {f"{c.physical_name}.{varchar.name}: varchar({varchar.length + 1}), contract says {varchar.physical_type}"}
    if required is not None:
        expected.add(f"{c.physical_name}.{required.name}: nullable, contract says required")
    assert set(problems) == expected and len(problems) == len(expected)


def test_conformance_of_a_missing_table_fails(estate, instance):
    from pipelines.apply.duckdb_backend import DuckDbBackend

    table = contracts()[0].physical_name
    DuckDbBackend(estate.reporting.duckdb.path).close()  # an empty file: no tables
    evals = run_checks(instance, [key(table, CONFORMANCE_CHECK)])
    e = evals[(table, CONFORMANCE_CHECK)]
    assert not e.passed and e.description == f"reporting.{table} does not exist"


# --------------------------------------------------------------------------- freshness
def test_freshness_verdict_rules():
    now = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert freshness_verdict(300, now - dt.timedelta(seconds=299), now)[0]
    passed, age, text = freshness_verdict(300, now - dt.timedelta(seconds=301), now)
    assert not passed and age == 301 and text == "newest change is 301s old, beyond the objective of 300s"
    assert freshness_verdict(300, None, now)[0] is False


def test_freshness_check_passes_and_fails_from_table_status(duckdb_with_schema, instance):
    fresh, stale_name, never_name = (c.physical_name for c in contracts()[:3])
    con = duckdb.connect(str(duckdb_with_schema))
    con.execute("INSERT INTO _pipeline.table_status (physical_name, newest_source_ts, rows_applied) VALUES "
                "(?, now() - INTERVAL 10 SECOND, 1), (?, now() - INTERVAL 400 DAY, 1)", [fresh, stale_name])
    con.close()
    evals = run_checks(instance, [key(n, FRESHNESS_CHECK) for n in (fresh, stale_name, never_name)])
    assert evals[(fresh, FRESHNESS_CHECK)].passed
    stale = evals[(stale_name, FRESHNESS_CHECK)]
    assert not stale.passed and "beyond the objective" in stale.description
    assert stale.metadata["age_s"].value > 400 * 86400 - 60
    never = evals[(never_name, FRESHNESS_CHECK)]
    assert not never.passed and never.severity == dg.AssetCheckSeverity.WARN
    assert never.description.startswith("no change applied yet")


# --------------------------------------------------------------------------- dead letters
def test_dead_letter_summary_attributes_undecodable_events_to_the_tables_of_their_source():
    feeds = {"public.items": ["items_v1", "items_v2"], "shop.public.items": ["items_v1", "items_v2"]}
    rows = [("items_v2", "public.items", "shop.public.items", "validate: currency 'EURO' too long", 1),
            (None, None, "shop.public.items", "decode: not JSON", 2)]
    summary = dead_letter_summary(rows, feeds)
    assert summary["items_v2"].count == 2 and summary["items_v2"].newest_reason == "decode: not JSON"
    assert summary["items_v1"].count == 1


def test_dead_letter_check_reports_count_and_newest_reason(duckdb_with_schema, instance, fed):
    topic, source_table, (target, *_) = fed
    other = next(c.physical_name for c in contracts() if c.physical_name not in fed[2])
    reason = f"{target}.some_column: value too long"
    con = duckdb.connect(str(duckdb_with_schema))
    con.execute("INSERT INTO _pipeline.dead_letters (topic, kafka_partition, kafka_offset, stage, reason, "
                "source_table, target_table, first_seen_at) VALUES (?, 0, 7, 'validate', ?, ?, ?, now())",
                [topic, reason, source_table, target])
    con.close()
    evals = run_checks(instance, [key(target, DEAD_LETTER_CHECK), key(other, DEAD_LETTER_CHECK)])
    e = evals[(target, DEAD_LETTER_CHECK)]
    assert not e.passed
    assert e.metadata["dead_letters"].value == 1
    assert e.metadata["newest_reason"].value == reason
    assert evals[(other, DEAD_LETTER_CHECK)].passed
