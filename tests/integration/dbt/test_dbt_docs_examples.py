"""The example queries in docs/dbt.md return exactly the tables printed under them, on both targets."""

from __future__ import annotations

import re

import pytest

from pipelines.settings import REPO_ROOT

pytestmark = pytest.mark.integration

DOC = REPO_ROOT / "docs" / "dbt.md"
EXAMPLE = re.compile(r"```sql\n(?P<sql>[^`]+?);?\n```\n(?P<table>(?:\|[^\n]*\|\n)+)")


def _examples() -> list[tuple[str, list[str], list[list[str]]]]:
    examples = []
    for m in EXAMPLE.finditer(DOC.read_text()):
        lines = [line.strip() for line in m["table"].strip().splitlines()]
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
        examples.append((m["sql"].strip().rstrip(";"), cells[0], cells[2:]))
    return examples


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_docs_have_an_example_per_mart_family():
    sql = " ".join(q for q, _, _ in _examples())
    for mart in ("fct_orders", "fct_order_lines", "fct_payments", "fct_daily_revenue", "fct_fulfilment_funnel",
                 "fct_order_fulfilment", "fct_stock_levels", "fct_stock_outs", "dim_products", "dim_customers",
                 "fct_verification_funnel"):
        assert f"marts.{mart} " in sql, mart


@pytest.mark.parametrize("example", _examples(), ids=lambda e: re.search(r"from (marts\.\w+)", e[0])[1])
def test_doc_example_result(reporting, example):
    sql, header, expected = example
    rows = reporting.query(sql)
    assert [[_show(v) for v in row] for row in rows] == expected, sql
    assert all(len(row) == len(header) for row in expected), f"malformed table under: {sql}"
