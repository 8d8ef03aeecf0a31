"""The first slice end to end on the real stack: orders PostgreSQL → Debezium → Kafka → pipeline →
reporting.orders_v1 / orders_v2 / order_lines_v1 in the reporting database of the e2e backend
(REPORTING_E2E_BACKEND: the DuckDB file, or a DuckLake read through its engine); internal columns never arrive.

    REPORTING_E2E_PORT_OFFSET=600 REPORTING_E2E_BACKEND=ducklake .venv/bin/pytest tests/e2e/test_orders_slice.py
"""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from pipelines.apply.runner import run_pipeline
from pipelines.stack.bootstrap import service_urls
from tests.support import reporting_db

pytestmark = pytest.mark.e2e

INTERNAL_COLUMNS = ("fraud_score", "internal_note", "terms_snapshot")


def orders_conn(stack) -> psycopg.Connection:
    url = service_urls(stack, driver=False)["orders"]
    return psycopg.connect(url, autocommit=True)


def ingest_until(settings, predicate, timeout: float = 90.0):
    """Run `ingest --until-caught-up` repeatedly until `predicate(reader)` holds (Debezium is asynchronous)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        run_pipeline(settings=settings, until_caught_up=True, say=lambda _m: None, install_signals=False)
        with reporting_db.reader(settings) as r:
            last = predicate(r)
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def _dead_letters(settings) -> int:
    if not reporting_db.table_exists(settings, "_pipeline", "dead_letters"):
        return 0
    return reporting_db.query(settings, "SELECT count(*) FROM _pipeline.dead_letters")[0][0]


def test_insert_update_delete_reach_contract_tables(stack):
    settings = stack.settings
    dead_before = _dead_letters(settings)
    canary = f"canary-{uuid.uuid4()}"
    terms = " ".join(uuid.uuid4().hex for _ in range(100))  # incompressible > 2 kB: stored out of line
    with orders_conn(stack) as conn:
        kept = conn.execute(
            "INSERT INTO orders (customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts,"
            " fraud_score, internal_note, terms_snapshot, metadata) VALUES (41, 10, 2599, 'eur', now(), now(),"
            " 0.9100, %s, %s, '{\"channel\": \"web\"}') RETURNING id", (canary, terms)).fetchone()[0]
        conn.execute("INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price_cents, discount_cents)"
                     " VALUES (%s, 1, 'VIN-0001', 2, 1000, 0), (%s, 2, 'CD-0002', 1, 599, 0)", (kept, kept))
        doomed = conn.execute(
            "INSERT INTO orders (customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts,"
            " terms_snapshot) VALUES (42, 10, 100, 'gbp', now(), now(), 'short') RETURNING id").fetchone()[0]

    ingest_until(settings, lambda r: r.query(
        "SELECT count(*) FROM reporting.orders_v1 WHERE order_id IN (?, ?)", [kept, doomed])[0][0] == 2)

    with orders_conn(stack) as conn:
        # an update that leaves the out-of-line terms_snapshot untouched (TOAST placeholder in the event)
        conn.execute("UPDATE orders SET state_code = 20, modified_ts = now() WHERE id = %s", (kept,))
        conn.execute("DELETE FROM orders WHERE id = %s", (doomed,))

    ingest_until(settings, lambda r: r.query(
        "SELECT count(*) FROM reporting.orders_v1 WHERE order_id = ? AND _deleted_at IS NOT NULL",
        [doomed])[0][0] == 1)

    with reporting_db.reader(settings) as r:
        (row,) = r.query("SELECT status, total_amount, currency, _op, _deleted_at FROM reporting.orders_v1 "
                         "WHERE order_id = ?", [kept])
        assert row[0] == "PAID" and str(row[1]) == "25.99" and row[2] == "EUR" and row[3] == "u" and row[4] is None
        v2 = r.query("SELECT order_status, sales_channel FROM reporting.orders_v2 WHERE order_id = ?", [kept])
        assert v2 == [("PAID", "web")]
        lines = r.query("SELECT line_number, line_amount FROM reporting.order_lines_v1 WHERE order_id = ? "
                        "ORDER BY 1", [kept])
        assert [(n, str(a)) for n, a in lines] == [(1, "20.00"), (2, "5.99")]
        deleted = r.query("SELECT _op FROM reporting.orders_v1 WHERE order_id = ?", [doomed])
        assert deleted == [("d",)]
        # internal columns exist nowhere in the reporting DB, neither as columns nor as values: every catalog
        # the reader sees (on DuckLake also its SQLite catalog, where small commits keep their rows inlined)
        cols = {c for (c,) in r.query("SELECT column_name FROM information_schema.columns")}
        assert "order_status" in cols and not cols & set(INTERNAL_COLUMNS)
        scanned = 0
        for catalog, schema, table, column in r.query(
                "SELECT table_catalog, table_schema, table_name, column_name FROM information_schema.columns "
                "WHERE data_type IN ('VARCHAR', 'BLOB', 'JSON')"):
            hits = r.query(f'SELECT count(*) FROM "{catalog}"."{schema}"."{table}" '
                           f'WHERE CAST("{column}" AS VARCHAR) LIKE ?', [f"%{canary}%"])[0][0]
            assert hits == 0, f"internal value found in {catalog}.{schema}.{table}.{column}"
            scanned += table == "orders_v1"
        assert scanned, "the scan did not reach reporting.orders_v1"
    assert _dead_letters(settings) == dead_before
