"""DuckLake with its catalog in PostgreSQL (`reporting.ducklake.postgres_catalog`), on a real PostgreSQL
server: the stream's batches land exactly once, a reader in another process sees committed batches while
the writer holds a transaction, history works, two lakes in two databases of one server stay apart, and
a wrong password fails with a message that does not carry the password."""

from __future__ import annotations

import datetime as dt
import secrets
import time

import duckdb
import pytest

from pipelines.apply.ducklake_backend import DuckLakeBackend
from pipelines.apply.runner import load_parts
from pipelines.cdc.events import Record
from tests.support.databases import ducklake_target, temp_postgres
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def catalog_server():
    with temp_postgres("lakecat") as (cluster, conninfo):
        yield cluster, conninfo


def _database(catalog_server, name: str) -> str:
    cluster, conninfo = catalog_server
    cluster.psql(f"CREATE DATABASE {name}")
    return conninfo.replace("dbname=postgres", f"dbname={name}")


def _orders(n_events: int, first_offset: int = 0):
    from pipelines.bench.workload import orders_changes

    return [Record("orders.public.orders", 0, first_offset + i, k, v)
            for i, (k, v) in enumerate(orders_changes(n_events, 500, 3))]


def _count(lake: DuckLakeBackend) -> int:
    return int(lake.query("SELECT count(*) FROM reporting.orders_v2")[0][0])


def test_batches_land_once_and_readers_see_commits_with_the_catalog_in_postgres(catalog_server, tmp_path):
    cluster, _ = catalog_server
    parts = load_parts(bundled_estate())
    target = ducklake_target(tmp_path, postgres=_database(catalog_server, "lake_a"))
    assert target.catalog is None and target.uri().startswith("postgres:")
    writer = DuckLakeBackend(target)
    try:
        writer.ensure_schema(list(parts.contracts.values()))
        events = _orders(300)
        first = parts.plan(events[:150])
        writer.apply("g", first)
        committed = _count(writer)
        assert committed > 0
        assert writer.stored_offsets("g") == {("orders.public.orders", 0): 150}
        writer.apply("g", first)  # the same changes again (upserts by key and position): no new rows
        assert _count(writer) == committed
        before_second = dt.datetime.now(dt.UTC)
        time.sleep(1.1)

        reader = DuckLakeBackend(target, read_only=True)
        try:
            assert _count(reader) == committed
            writer.begin()
            writer.execute("DELETE FROM reporting.orders_v2")
            assert _count(reader) == committed  # never the writer's open transaction
            writer.rollback()
            writer.apply("g", parts.plan(events[150:]))
            assert _count(reader) == _count(writer) >= committed
            with pytest.raises(duckdb.Error):
                reader.execute("DELETE FROM reporting.orders_v2")
        finally:
            reader.close()

        past = DuckLakeBackend(target, read_only=True, as_of=before_second.strftime("%Y-%m-%d %H:%M:%S.%f+00"))
        try:
            assert _count(past) == committed
            assert past.stored_offsets("g") == {("orders.public.orders", 0): 150}
        finally:
            past.close()
    finally:
        writer.close()
    # the catalog is PostgreSQL tables; the rows are Parquet files in the data path
    tables = cluster.psql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'ducklake_%'", db="lake_a")
    assert int(tables.strip()) > 5, tables
    assert list((tmp_path / "lake" / "data").rglob("*.parquet"))


def test_two_lakes_on_one_server_stay_apart(catalog_server, tmp_path):
    parts = load_parts(bundled_estate())
    a = DuckLakeBackend(ducklake_target(tmp_path / "a", postgres=_database(catalog_server, "lake_b1")))
    b = DuckLakeBackend(ducklake_target(tmp_path / "b", postgres=_database(catalog_server, "lake_b2")))
    try:
        for lake in (a, b):
            lake.ensure_schema(list(parts.contracts.values()))
        a.apply("g", parts.plan(_orders(40)))
        assert _count(a) > 0
        assert _count(b) == 0
        assert b.stored_offsets("g") == {}
    finally:
        a.close()
        b.close()


def test_a_wrong_password_fails_without_showing_it(catalog_server, tmp_path):
    _database(catalog_server, "lake_c")
    _, conninfo = catalog_server
    wrong = secrets.token_urlsafe(12)
    bad = " ".join(f"password={wrong}" if p.startswith("password=") else p
                   for p in conninfo.replace("dbname=postgres", "dbname=lake_c").split())
    target = ducklake_target(tmp_path, postgres=bad)
    assert wrong not in target.label and wrong not in repr(target)
    with pytest.raises(duckdb.Error) as failed:
        DuckLakeBackend(target)
    assert "password" in str(failed.value).lower() or "authentication" in str(failed.value).lower(), failed.value
    assert wrong not in str(failed.value)
