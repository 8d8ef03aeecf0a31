"""PostgreSQL staging tables are created once per session and shape, emptied by every commit, and
forgotten after a rollback or a reconnect; every batch still applies exactly its own rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pipelines.apply.backend import ApplyBatch, TableBatch
from pipelines.contract.model import load_contracts
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def pg(pg_server):
    """PostgreSQL only: DuckDB has no session staging tables."""
    import uuid

    from pipelines.apply.postgres_backend import PostgresBackend

    cluster, conninfo = pg_server
    db = f"staging_reuse_{uuid.uuid4().hex[:8]}"
    cluster.psql(f"CREATE DATABASE {db}")
    backend = PostgresBackend(conninfo.replace("dbname=postgres", f"dbname={db}"))
    yield backend
    backend.close()


def batch(contract, rows, keep=None):
    """rows: (order_id, status, cents, position)"""
    cols = [[], [], [], [], [], [], []]
    for oid, status, cents, p in rows:
        for i, v in enumerate([oid, 7, status, Decimal(cents) / 100, "EUR", T0, T0 + dt.timedelta(seconds=p)]):
            cols[i].append(v)
    n = len(rows)
    return TableBatch(contract, cols, [r[3] for r in rows], [T0 + dt.timedelta(seconds=r[3]) for r in rows],
                      ["u"] * n, [False] * n, keep or {})


def staging_oid(pg):
    rows = pg.query("SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relname = 'staged_orders_v1' AND n.nspname LIKE 'pg_temp%'")
    return rows[0][0] if rows else None


def test_staging_is_reused_emptied_and_recreated_when_needed(pg):
    c = {x.physical_name: x for x in load_contracts(bundled_estate().contracts)}["orders_v1"]
    pg.ensure_schema([c])
    pg.apply("g", ApplyBatch([batch(c, [(1, "PLACED", 100, 10), (2, "PLACED", 200, 11)])], [], {("t", 0): 2}))
    first = staging_oid(pg)
    assert first is not None
    assert pg.query("SELECT count(*) FROM pg_temp.staged_orders_v1") == [(0,)]  # the commit emptied it
    pg.apply("g", ApplyBatch([batch(c, [(1, "PAID", 100, 20)])], [], {("t", 0): 3}))
    assert staging_oid(pg) == first  # the same table, not dropped and created again
    # a batch that fails rolls back: its staged rows and its offsets are gone, the next batch is whole
    pg.before_commit_hooks.append(lambda: (_ for _ in ()).throw(RuntimeError("crash before commit")))
    with pytest.raises(RuntimeError):
        pg.apply("g", ApplyBatch([batch(c, [(2, "CANCELLED", 200, 30)])], [], {("t", 0): 4}))
    pg.before_commit_hooks.clear()
    pg.apply("g", ApplyBatch([batch(c, [(3, "PLACED", 300, 31)])], [], {("t", 0): 5}))
    rows = pg.query('SELECT order_id, status FROM reporting.orders_v1 ORDER BY 1')
    assert rows == [(1, "PAID"), (2, "PLACED"), (3, "PLACED")]
    assert pg.stored_offsets("g") == {("t", 0): 5}
    # another shape (a TOAST keep flag column) gets a table of that shape; a reconnect starts afresh
    pg.apply("g", ApplyBatch([batch(c, [(3, "PAID", 300, 40)], keep={"status": [False]})], [], {("t", 0): 6}))
    pg.reconnect()
    pg.apply("g", ApplyBatch([batch(c, [(1, "SHIPPED", 100, 50)])], [], {("t", 0): 7}))
    rows = pg.query('SELECT order_id, status FROM reporting.orders_v1 ORDER BY 1')
    assert rows == [(1, "SHIPPED"), (2, "PLACED"), (3, "PAID")]
