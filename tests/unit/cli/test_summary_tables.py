"""The tables at the end of `reporting simulate` and `reporting demo`: whole values, a newline at the end."""

from __future__ import annotations

import io
import sys

import pytest

from estate.planner import Flow
from estate.simulator import SimulationReport, _Display

pytestmark = pytest.mark.unit


def test_simulator_summary_table_ends_with_a_newline_when_piped(monkeypatch):
    """The simulator's live table goes to stderr; off a terminal rich leaves its last line open."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("COLUMNS", "80")
    report = SimulationReport(seed=7, target_rate=200.0, elapsed_s=3.0, operations=1323,
                              per_flow={Flow.PLACE_ORDER.value: 1323})
    with _Display(report, duration=3.0):
        pass
    text = err.getvalue()
    assert text.endswith("\n")
    assert "place_order" in text and "1,323" in text
    assert "\x1b[" not in text and "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_demo_final_tables_keep_every_value(tmp_path, monkeypatch):
    """`reporting demo`'s last step: the contract counts and the mart, whole at 80 columns and piped."""
    import datetime as dt
    import decimal

    import duckdb
    from rich.console import Console

    from pipelines import demo
    from tests.support.estate import settings_for

    db = tmp_path / "reportingdb.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.fct_daily_revenue (revenue_date DATE, sales_channel_description VARCHAR, "
                "orders BIGINT, gross_revenue DECIMAL(18, 2), refunded_revenue DECIMAL(18, 2))")
    con.execute("INSERT INTO marts.fct_daily_revenue VALUES (?, ?, ?, ?, ?)",
                [dt.date(2027, 6, 1), "web-shop-europe-north-west-distribution", 1323456789,
                 decimal.Decimal("98765432.10"), decimal.Decimal("1234.50")])
    con.close()
    settings = settings_for(tmp_path, **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(db)})
    out = io.StringIO()
    demo.print_mart(settings, Console(file=out, width=80))
    text = out.getvalue()
    assert "\x1b[" not in text and "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for value in ("2027-06-01", "web-shop-europe-north-west-distribution", "1,323,456,789", "98765432.10",
                  "1234.50"):
        assert value in text
