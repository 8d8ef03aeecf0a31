"""`reporting contract status`, pure part: lifecycle, deprecation countdown and freshness verdicts."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from reconcile_kit import col, contract
from rich.console import Console

from pipelines.contract.status import TableFacts, build_status, render_status

pytestmark = pytest.mark.unit

UTC = dt.UTC
NOW = dt.datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
COLS = [col("order_id", "bigint", pk=True)]
V1 = contract("orders", COLS, major=1, status="deprecated", deprecation=dt.date(2027, 6, 30), freshness=300)
V2 = contract("orders", COLS, major=2, freshness=300)
LINES = contract("order_lines", COLS, freshness=60)
STOCK = contract("stock_levels", COLS, delete="hard", owner="warehouse")


def test_freshness_deprecation_and_missing_tables():
    facts = {
        "orders_v1": TableFacts(True, 10, 2, NOW - dt.timedelta(minutes=2)),
        "orders_v2": TableFacts(True, 10, 2, NOW - dt.timedelta(minutes=9),
                                pipeline_newest_source_ts=NOW - dt.timedelta(minutes=4), last_applied_at=NOW),
        "order_lines_v1": TableFacts(True, 0, 0, None),
    }
    by = {s.table: s for s in build_status([V2, LINES, V1, STOCK], facts, NOW)}
    assert list(by) == ["order_lines_v1", "orders_v1", "orders_v2", "stock_levels_v1"]
    v1, v2 = by["orders_v1"], by["orders_v2"]
    assert (v1.status, v1.deprecation_date, v1.days_to_deprecation) == ("deprecated", dt.date(2027, 6, 30), 29)
    assert (v1.freshness, v1.age_seconds, v1.live_rows, v1.deleted_rows) == ("fresh", 120.0, 10, 2)
    assert v2.freshness == "fresh" and v2.age_seconds == 240.0  # the newest of table and pipeline status
    assert by["order_lines_v1"].freshness == "unknown"
    assert by["stock_levels_v1"].freshness == "missing" and by["stock_levels_v1"].live_rows is None
    stale = build_status([LINES], {"order_lines_v1": TableFacts(True, 5, 0, NOW - dt.timedelta(seconds=61))}, NOW)
    assert stale[0].freshness == "stale"
    past = build_status([V1], {}, dt.datetime(2027, 7, 2, tzinfo=UTC))[0]
    assert past.days_to_deprecation == -2


def test_render_lists_every_version():
    statuses = build_status([V1, V2], {"orders_v1": TableFacts(True, 1234, 5, NOW)}, NOW)
    out = io.StringIO()
    Console(file=out, width=220, color_system=None).print(render_status(statuses))
    text = out.getvalue()
    assert "orders_v1" in text and "2027-06-30 (29 days left)" in text and "1,234 (+5 deleted)" in text
    assert "orders_v2" in text and "missing" in text and "5m" in text
