"""`contract_status(settings)` on a real DuckDB reporting file and on PostgreSQL (read_facts)."""

from __future__ import annotations

import datetime as dt

import pytest
from reconcile_sources import write_reporting

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.apply.postgres_backend import PostgresBackend
from pipelines.contract.model import load_contracts
from pipelines.contract.status import build_status, contract_status, read_facts
from tests.support.estate import settings_for

pytestmark = pytest.mark.integration

UTC = dt.UTC
NOW = dt.datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
T = NOW - dt.timedelta(minutes=3)
V1_ROWS = [(1, 7, "PAID", 1, "EUR", T, T), (2, 7, "PAID", 2, "EUR", T, T), (3, 8, "PLACED", 3, "EUR", T, T)]


def _fill(backend, contracts) -> None:
    write_reporting(backend, contracts, {"orders_v1": V1_ROWS, "order_lines_v1": []})
    backend.execute("UPDATE reporting.orders_v1 SET _deleted_at = ?, _source_ts = ? WHERE order_id = 3",
                    (NOW - dt.timedelta(minutes=1), NOW - dt.timedelta(minutes=1)))
    backend.execute("INSERT INTO _pipeline.table_status (physical_name, newest_source_ts, last_applied_at, "
                    "rows_applied) VALUES ('order_lines_v1', ?, ?, 5)", (NOW - dt.timedelta(hours=2), NOW))


def _check(statuses) -> None:
    by = {s.table: s for s in statuses}
    v1 = by["orders_v1"]
    assert (v1.exists, v1.live_rows, v1.deleted_rows, v1.status) == (True, 2, 1, "deprecated")
    assert v1.newest_source_ts == NOW - dt.timedelta(minutes=1) and v1.freshness == "fresh"
    lines = by["order_lines_v1"]
    assert (lines.live_rows, lines.freshness, lines.age_seconds) == (0, "stale", 7200.0)
    assert by["orders_v2"].freshness == "missing" and not by["orders_v2"].exists


def test_contract_status_from_settings_on_duckdb(tmp_path, contracts):
    path = tmp_path / "status.duckdb"
    writer = DuckDbBackend(path)
    _fill(writer, contracts)
    writer.close()
    settings = settings_for(tmp_path, **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(path)})
    statuses = contract_status(settings, now=NOW)
    assert {s.table for s in statuses} == {c.physical_name for c in load_contracts(settings.estate.contracts)}
    _check(statuses)


def test_read_facts_on_postgres(new_pg_db, contracts):
    backend = PostgresBackend(new_pg_db("status"))
    try:
        _fill(backend, contracts)
        _check(build_status(contracts.values(), read_facts(backend, contracts.values()), NOW))
    finally:
        backend.close()
