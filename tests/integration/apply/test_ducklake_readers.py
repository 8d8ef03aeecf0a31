"""DuckLake's two promises, on a real lake (SQLite catalog, Parquet files) and two engine processes: a reader
sees every committed batch while the writer holds an open transaction (never the uncommitted one), and a
reader as of an earlier time sees the lake as it was then."""

from __future__ import annotations

import datetime as dt
import time

import duckdb
import pytest

from pipelines.apply.ducklake_backend import DuckLakeBackend
from pipelines.apply.runner import load_parts
from pipelines.cdc.events import Record
from tests.support.databases import ducklake_target
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration


def _orders(n_events: int):
    from pipelines.bench.workload import orders_changes

    return [Record("orders.public.orders", 0, i, k, v) for i, (k, v) in enumerate(orders_changes(n_events, 1000, 3))]


def _count(lake: DuckLakeBackend) -> int:
    return int(lake.query("SELECT count(*) FROM reporting.orders_v2")[0][0])


def test_a_reader_sees_committed_batches_while_the_writer_holds_a_transaction(tmp_path):
    parts = load_parts(bundled_estate())
    target = ducklake_target(tmp_path)
    writer = DuckLakeBackend(target)
    try:
        writer.ensure_schema(list(parts.contracts.values()))
        events = _orders(200)
        writer.apply("g", parts.plan(events[:100]))
        committed = _count(writer)
        before_second = dt.datetime.now(dt.UTC)
        time.sleep(1.1)  # snapshot times are compared at the resolution DuckLake stores

        reader = DuckLakeBackend(target, read_only=True)
        try:
            assert _count(reader) == committed > 0
            writer.begin()  # the writer's open transaction: rows the reader must not see
            writer.execute("DELETE FROM reporting.orders_v2")
            assert _count(reader) == committed
            writer.rollback()
            writer.apply("g", parts.plan(events[100:]))
            now = _count(writer)
            assert now > committed
            assert _count(reader) == now  # the next statement of the same reader sees the new commit
            with pytest.raises(duckdb.Error):
                reader.execute("DELETE FROM reporting.orders_v2")  # attached read-only
        finally:
            reader.close()

        as_of = before_second.strftime("%Y-%m-%d %H:%M:%S.%f+00")
        past = DuckLakeBackend(target, read_only=True, as_of=as_of)
        try:
            assert _count(past) == committed
            offsets = past.stored_offsets("g")
            assert offsets == {("orders.public.orders", 0): 100}  # rows and offsets of the same commit
        finally:
            past.close()
    finally:
        writer.close()


def test_a_catalog_locked_by_another_process_is_named_as_the_cause(tmp_path):
    """The stream's waiting line says why it waits: SQLite's reason comes through the engine."""
    import subprocess
    import sys

    target = ducklake_target(tmp_path)
    DuckLakeBackend(target).close()  # the catalog exists
    hold = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(target.catalog)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.Error) as caught:
            DuckLakeBackend(target)
        assert "database is locked" in str(caught.value), str(caught.value)
    finally:
        holder.kill()
        holder.wait()
    DuckLakeBackend(target).close()  # released: opens again
