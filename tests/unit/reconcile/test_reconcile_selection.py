"""Target selection, expected rows through the pipeline planner, exit codes and the rendered report."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from rich.console import Console

from pipelines.contract.model import load_contracts
from pipelines.projection import load_projections
from pipelines.reconcile import ReconcileError, RowDifference, TableReconciliation, exit_code, render
from pipelines.reconcile.diff import ColumnDifference
from pipelines.reconcile.expected import ExpectedRows
from pipelines.reconcile.run import select_targets
from pipelines.settings import REPO_ROOT

pytestmark = pytest.mark.unit

UTC = dt.UTC


@pytest.fixture(scope="module")
def contracts():
    return {c.physical_name: c for c in load_contracts() if c.status != "retired"}


@pytest.fixture(scope="module")
def projections():
    return load_projections(REPO_ROOT / "connectors")


def test_select_by_table_name_or_physical_name_grouped_by_source(projections, contracts):
    groups, unfed = select_targets(projections, contracts, ["orders", "order_lines_v1"])
    assert unfed == []
    assert sorted((tp.source_table, names) for tp, names in groups) == [
        ("public.order_lines", ["order_lines_v1"]), ("public.orders", ["orders_v1", "orders_v2"])]
    groups, _ = select_targets(projections, contracts, ["orders_v2"])
    assert [(tp.source_table, names) for tp, names in groups] == [("public.orders", ["orders_v2"])]


def test_unfed_contracts_are_skipped_unless_asked_for(projections, contracts):
    _, unfed = select_targets(projections, contracts, None)
    fed = {t.physical_name for tp in projections.values() for t in tp.targets}
    assert {r.table for r in unfed} == set(contracts) - fed
    assert all(r.status == "skipped" for r in unfed)
    if "customers_v1" not in fed:
        _, asked = select_targets(projections, contracts, ["customers"])
        assert asked[0].status == "error" and "connectors/customers/projection.yaml" in asked[0].error
    with pytest.raises(ReconcileError, match="unknown contract table 'invoices'"):
        select_targets(projections, contracts, ["invoices"])


def test_expected_rows_are_the_pipeline_projection(projections, contracts):
    tp = projections["orders.public.orders"]
    expected = ExpectedRows(tp, contracts)
    base = {"id": 1, "customer_ref": 7, "state_code": 95, "total_cents": 1999, "currency_iso": "eur",
            "created_ts": "2026-01-01T10:00:00.5+02:00", "modified_ts": "2026-01-01T08:00:01Z",
            "metadata": '{"channel": "app"}'}
    out = expected.project([base, {**base, "id": 2, "state_code": 50}, {**base, "id": 3, "currency_iso": None}])
    v1, v2 = out["orders_v1"], out["orders_v2"]
    assert v1.rows[0][:7] == (1, 7, "CANCELLED", Decimal("19.99"), "EUR",
                              dt.datetime(2026, 1, 1, 8, 0, 0, 500000, tzinfo=UTC),
                              dt.datetime(2026, 1, 1, 8, 0, 1, tzinfo=UTC))
    assert v2.rows[0][2] == "REFUNDED" and v2.rows[0][7] == "app"
    assert [(row["id"], reason.split(":")[0]) for row, reason in v1.invalid] == [(2, "project"), (3, "validate")]
    assert expected.source_key({"id": 2}, "orders_v2") == {"order_id": 2}
    assert expected.source_key({"id": "x"}, "orders_v2") is None
    only_v2 = ExpectedRows(tp, contracts, ["orders_v2"])
    assert set(only_v2.project([base])) == {"orders_v2"}


def test_exit_codes():
    ok = TableReconciliation("orders_v1", source_rows=2, reporting_rows=2)
    diff = TableReconciliation("orders_v2", missing=1)
    broken = TableReconciliation("order_lines_v1", error="cannot connect")
    skipped = TableReconciliation("customers_v1", skipped="no projection")
    assert exit_code([ok, skipped]) == 0
    assert exit_code([ok, diff]) == 1
    assert exit_code([diff, broken]) == 2


def test_render_shows_counts_samples_and_verdict():
    r = TableReconciliation("orders_v2", "orders:public.orders", source_rows=3, reporting_rows=3, different=1,
                            missing=5, missing_samples=[RowDifference("missing", (("order_id", "4"),))],
                            different_samples=[RowDifference("different", (("order_id", "7"),),
                                                             (ColumnDifference("total_amount", "13.94", "14.94"),))])
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render([r, TableReconciliation("customers_v1",
                                                                                        skipped="no projection")]))
    text = out.getvalue()
    assert "orders_v2: 5 missing (first 1 by key)" in text
    assert "order_id=7  total_amount: expected 13.94, stored 14.94" in text
    assert "customers_v1: skipped, no projection" in text
    assert "1 table(s) compared, 3 source rows, 6 difference(s)" in text
