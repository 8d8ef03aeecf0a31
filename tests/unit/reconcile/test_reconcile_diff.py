"""The differ: counts always complete, samples = the N smallest keys, differing columns named."""

from __future__ import annotations

from decimal import Decimal

import pytest
from reconcile_kit import col, contract

from pipelines.reconcile.canonical import RowCanon
from pipelines.reconcile.diff import TableDiffer

pytestmark = pytest.mark.unit

ORDERS = contract("orders", [col("order_id", "bigint", pk=True), col("status", "varchar", length=16),
                             col("total_amount", "decimal", precision=12, scale=2)])


def differ(stored_rows, show=10):
    d = TableDiffer(RowCanon(ORDERS), show)
    d.add_stored(stored_rows)  # canonical, as selected in SQL: amount scaled by 100
    return d


def fetcher(stored_rows):
    by_key = {r[0]: r for r in stored_rows}
    calls = []

    def fetch(keys):
        calls.append(list(keys))
        return {k: by_key[k] for k in keys if k in by_key}

    return fetch, calls


def test_missing_extra_different_and_invalid_are_counted_and_sampled():
    stored = [(1, "PAID", 1000), (2, "PAID", 500), (3, "PLACED", 100), (9, "PAID", 1)]
    d = differ(stored)
    d.add_expected([(1, "PAID", Decimal("10.00"), 123, None, "r"),  # equal (provenance ignored)
                    (2, "SHIPPED", Decimal("5.01")),  # different: status and amount
                    (4, "PAID", Decimal("1"))])  # missing
    d.add_invalid(3, "project: orders_v1.status: state 50 has no mapping")  # stored row 3 is stale, not extra
    fetch, calls = fetcher(stored)
    r = d.result("orders_v1", "orders:public.orders", fetch, seconds=1.5)
    assert (r.source_rows, r.reporting_rows, r.missing, r.extra, r.different, r.invalid) == (4, 4, 1, 1, 1, 1)
    assert r.status == "differences" and not r.ok and r.differences == 4 and r.seconds == 1.5
    assert [s.key for s in r.missing_samples] == [(("order_id", "4"),)]
    assert [s.key for s in r.extra_samples] == [(("order_id", "9"),)]
    (diff,) = r.different_samples
    assert diff.key_text == "order_id=2"
    assert [(c.column, c.expected, c.actual) for c in diff.columns] == [
        ("status", "SHIPPED", "PAID"), ("total_amount", "5.01", "5.00")]
    assert r.invalid_samples[0].reason.startswith("project:") and r.invalid_samples[0].key_text == "order_id=3"
    assert calls == [[2]]  # only the sampled different keys are looked up


def test_samples_are_the_smallest_keys_and_counts_stay_complete():
    d = differ([(k, "PAID", 100) for k in range(1000, 1100)], show=3)
    d.add_expected([(k, "PAID", Decimal(1)) for k in range(500, 0, -1)])  # 500 missing, reverse order
    d.add_expected([(k, "PAID", Decimal(2)) for k in range(1099, 1049, -1)])  # 50 different
    d.add_invalid(None, "decode: key not decodable")
    r = d.result("orders_v1", "src", lambda keys: {k: (k, "PAID", 100) for k in keys})
    assert (r.missing, r.different, r.extra, r.invalid) == (500, 50, 50, 1)
    assert [s.key_text for s in r.missing_samples] == ["order_id=1", "order_id=2", "order_id=3"]
    assert [s.key_text for s in r.different_samples] == ["order_id=1050", "order_id=1051", "order_id=1052"]
    assert [s.key_text for s in r.extra_samples] == ["order_id=1000", "order_id=1001", "order_id=1002"]
    assert r.invalid_samples[0].key_text == "(key not decodable)"


def test_show_zero_keeps_counts_only_and_a_clean_table_is_ok():
    d = differ([(1, "PAID", 100)], show=0)
    d.add_expected([(1, "PAID", Decimal(2)), (2, "PAID", Decimal(1))])
    r = d.result("orders_v1", "src", lambda keys: pytest.fail("no lookup without samples"))
    assert (r.missing, r.different) == (1, 1)
    assert r.missing_samples == r.different_samples == r.extra_samples == []
    clean = differ([(1, "PAID", 100)])
    clean.add_expected([(1, "PAID", Decimal("1.00"))])
    ok = clean.result("orders_v1", "src")
    assert ok.ok and ok.status == "ok" and ok.differences == 0


def test_composite_keys_sort_and_show_per_column():
    lines = contract("lines", [col("order_id", "bigint", pk=True), col("line_number", "integer", pk=True),
                               col("sku", "varchar")])
    d = TableDiffer(RowCanon(lines), 2)
    d.add_stored([(2, 1, "A"), (1, 2, "B"), (1, 1, "C")])
    d.add_expected([])
    r = d.result("order_lines_v1", "src")
    assert r.extra == 3
    assert [s.key for s in r.extra_samples] == [(("order_id", "1"), ("line_number", "1")),
                                                (("order_id", "1"), ("line_number", "2"))]
