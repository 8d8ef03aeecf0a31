"""Apply semantics on a real DuckDB (and PostgreSQL, see conftest): newest wins, replays are no-ops,
soft and hard deletes, no resurrection, TOAST keep, offsets and rows in one transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pipelines.apply.backend import ApplyBatch, DeadLetterRow, TableBatch
from pipelines.contract.model import load_contracts
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def contracts():
    return {c.physical_name: c for c in load_contracts(bundled_estate().contracts)}


def orders_batch(contract, rows, keep=None):
    """rows: (order_id, status, cents, position, op, is_delete)"""
    cols = [[], [], [], [], [], [], []]
    pos, ts, ops, dels = [], [], [], []
    for oid, status, cents, p, op, is_del in rows:
        vals = [oid, 7, status, Decimal(cents) / 100, "EUR", T0, T0 + dt.timedelta(seconds=p)]
        for i, v in enumerate(vals):
            cols[i].append(None if is_del and i else v)
        pos.append(p)
        ts.append(T0 + dt.timedelta(seconds=p))
        ops.append(op)
        dels.append(is_del)
    return TableBatch(contract, cols, pos, ts, ops, dels, keep or {})


def fetch(backend, sql):
    return backend.query(sql)


def test_newest_wins_and_replay_is_noop(backend, contracts):
    c = contracts["orders_v1"]
    backend.ensure_schema([c])
    b1 = orders_batch(c, [(1, "PLACED", 1000, 10, "c", False), (2, "PLACED", 500, 11, "c", False)])
    backend.apply("g", ApplyBatch([b1], [], {("orders.public.orders", 0): 2}))
    b2 = orders_batch(c, [(1, "PAID", 1000, 20, "u", False)])
    backend.apply("g", ApplyBatch([b2], [], {("orders.public.orders", 0): 3}))
    # replay of the first batch (older positions) must change nothing
    backend.apply("g", ApplyBatch([b1], [], {("orders.public.orders", 0): 3}))
    rows = fetch(backend, 'SELECT order_id, status, "_source_position", "_op" FROM reporting.orders_v1 ORDER BY 1')
    assert rows == [(1, "PAID", 20, "u"), (2, "PLACED", 11, "c")]
    assert backend.stored_offsets("g") == {("orders.public.orders", 0): 3}


def test_soft_delete_and_no_resurrection(backend, contracts):
    c = contracts["orders_v1"]
    backend.ensure_schema([c])
    backend.apply("g", ApplyBatch([orders_batch(c, [(5, "PLACED", 100, 10, "c", False)])], [], {}))
    backend.apply("g", ApplyBatch([orders_batch(c, [(5, None, 0, 30, "d", True), (6, None, 0, 31, "d", True)])], [], {}))
    rows = fetch(backend, 'SELECT order_id, "_op", "_deleted_at" IS NOT NULL FROM reporting.orders_v1 WHERE order_id IN (5, 6)')
    assert rows == [(5, "d", True)]  # 6 was never seen: nothing to soft-delete, but its delete is remembered
    # a replayed create older than the delete must not bring either key back
    backend.apply("g", ApplyBatch([orders_batch(c, [(5, "PLACED", 100, 10, "c", False),
                                                    (6, "PLACED", 100, 12, "c", False)])], [], {}))
    rows = fetch(backend, 'SELECT order_id, "_op", "_deleted_at" IS NOT NULL FROM reporting.orders_v1 WHERE order_id IN (5, 6)')
    assert rows == [(5, "d", True)]
    # a genuinely newer create of the same key revives it
    backend.apply("g", ApplyBatch([orders_batch(c, [(5, "PLACED", 100, 40, "c", False)])], [], {}))
    rows = fetch(backend, 'SELECT order_id, "_op", "_deleted_at" IS NULL FROM reporting.orders_v1 WHERE order_id = 5')
    assert rows == [(5, "c", True)]


def test_hard_delete(backend, contracts):
    c = contracts["stock_levels_v1"]
    backend.ensure_schema([c])

    def batch(rows):
        cols = [[], [], [], [], []]
        pos, ts, ops, dels = [], [], [], []
        for sku, loc, on_hand, p, is_del in rows:
            for i, v in enumerate([sku, loc, None if is_del else on_hand, None if is_del else 0, None if is_del else T0]):
                cols[i].append(v)
            pos.append(p)
            ts.append(T0)
            ops.append("d" if is_del else "c")
            dels.append(is_del)
        return TableBatch(c, cols, pos, ts, ops, dels)

    backend.apply("g", ApplyBatch([batch([("VIN-1", "DUB", 4, 10, False), ("CD-2", "DUB", 1, 10, False)])], [], {}))
    backend.apply("g", ApplyBatch([batch([("CD-2", "DUB", 0, 20, True)])], [], {}))
    backend.apply("g", ApplyBatch([batch([("CD-2", "DUB", 1, 10, False)])], [], {}))  # replayed create
    assert fetch(backend, "SELECT sku FROM reporting.stock_levels_v1 ORDER BY 1") == [("VIN-1",)]


def test_toast_keep_stored_value(backend, contracts):
    c = contracts["orders_v1"]
    backend.ensure_schema([c])
    backend.apply("g", ApplyBatch([orders_batch(c, [(9, "PLACED", 4200, 10, "c", False)])], [], {}))
    # the update says total_amount is unavailable: the stored 42.00 must survive
    b = orders_batch(c, [(9, "PAID", 0, 20, "u", False)], keep={"total_amount": [True]})
    b.columns[3] = [None]
    backend.apply("g", ApplyBatch([b], [], {}))
    assert fetch(backend, "SELECT status, total_amount FROM reporting.orders_v1 WHERE order_id = 9") == [
        ("PAID", Decimal("42.00"))]


def test_rows_offsets_and_dead_letters_are_one_transaction(backend, contracts):
    c = contracts["orders_v1"]
    backend.ensure_schema([c])
    bad = orders_batch(c, [(20, "PLACED", 100, 10, "c", False)])
    bad.columns[1] = [None]  # customer_id is required: the database refuses the whole batch
    dl = DeadLetterRow("orders.public.orders", 0, 41, "decode", "malformed JSON", None, None, b"k", b"{")
    with pytest.raises(Exception):  # noqa: B017 - any driver error
        backend.apply("g2", ApplyBatch([bad], [dl], {("orders.public.orders", 0): 42}))
    assert backend.stored_offsets("g2") == {}
    assert fetch(backend, "SELECT count(*) FROM _pipeline.dead_letters WHERE kafka_offset = 41") == [(0,)]
    assert fetch(backend, "SELECT count(*) FROM reporting.orders_v1 WHERE order_id = 20") == [(0,)]
    ok = orders_batch(c, [(20, "PLACED", 100, 10, "c", False)])
    backend.apply("g2", ApplyBatch([ok], [dl], {("orders.public.orders", 0): 42}))
    assert backend.stored_offsets("g2") == {("orders.public.orders", 0): 42}
    assert fetch(backend, "SELECT stage, reason FROM _pipeline.dead_letters WHERE kafka_offset = 41") == [
        ("decode", "malformed JSON")]


def test_status_and_offsets_accumulate_over_batches_and_partitions(backend, contracts):
    """The first batch of a table or partition inserts its row, later ones update it (DuckDB: an UPDATE,
    then an insert of only the missing rows; PostgreSQL: one upsert)."""
    c = contracts["orders_v1"]
    backend.ensure_schema([c])
    backend.apply("g", ApplyBatch([orders_batch(c, [(1, "PLACED", 100, 10, "c", False)])], [], {("o", 0): 5}))
    backend.apply("g", ApplyBatch([orders_batch(c, [(2, "PLACED", 100, 12, "c", False),
                                                    (3, "PLACED", 100, 11, "c", False)])], [],
                                  {("o", 0): 9, ("o", 1): 4}))
    backend.apply("h", ApplyBatch([orders_batch(c, [(1, "PAID", 100, 5, "u", False)])], [], {("o", 0): 2}))
    assert backend.stored_offsets("g") == {("o", 0): 9, ("o", 1): 4}
    assert backend.stored_offsets("h") == {("o", 0): 2}
    rows = fetch(backend, "SELECT physical_name, newest_source_ts, rows_applied FROM _pipeline.table_status")
    # rows counts rows handed to the table (the replayed older change of order 1 too); the newest
    # source time never goes back
    assert rows == [("orders_v1", T0 + dt.timedelta(seconds=12), 4)]


def test_a_new_writer_sees_the_deletes_and_truncates_an_earlier_one_stored(tmp_path, contracts):
    """DuckDB's writer skips the deleted-keys join and the truncate check while it knows they can drop
    nothing; a writer opened later must learn from the file that they can."""
    from pipelines.apply.duckdb_backend import DuckDbBackend

    c = contracts["orders_v1"]
    path = tmp_path / "r.duckdb"
    first = DuckDbBackend(path)
    first.ensure_schema([c])
    first.apply("g", ApplyBatch([orders_batch(c, [(5, "PLACED", 100, 10, "c", False),
                                                  (8, "PLACED", 100, 10, "c", False)])], [], {}))
    first.apply("g", ApplyBatch([orders_batch(c, [(5, None, 0, 30, "d", True)])], [], {}))
    truncate = orders_batch(c, [])
    truncate.truncates = [(40, T0 + dt.timedelta(seconds=40))]
    first.apply("g", ApplyBatch([truncate], [], {}))
    first.close()
    second = DuckDbBackend(path)
    try:
        # replayed creates, older than the delete (5) and the truncate (9): neither may come back
        second.apply("g", ApplyBatch([orders_batch(c, [(5, "PLACED", 100, 10, "c", False),
                                                       (9, "PLACED", 100, 35, "c", False)])], [], {}))
        live = fetch(second, 'SELECT order_id FROM reporting.orders_v1 WHERE "_deleted_at" IS NULL')
        assert live == []
        second.apply("g", ApplyBatch([orders_batch(c, [(9, "PLACED", 100, 50, "c", False)])], [], {}))
        assert fetch(second, 'SELECT order_id FROM reporting.orders_v1 WHERE "_deleted_at" IS NULL') == [(9,)]
    finally:
        second.close()
