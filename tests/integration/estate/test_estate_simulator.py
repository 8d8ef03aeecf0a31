"""The simulator, bulk load and canaries against real databases: determinism, consistency, pacing."""

from __future__ import annotations

import psycopg
import pytest

from estate import planner, simulator
from estate.canary import plant_canaries
from estate.db import Estate, connect_postgres
from estate.services import SERVICES

pytestmark = pytest.mark.integration


def _count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names


def _maria_rows(conn, sql: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = list(cur.fetchall())
    conn.commit()
    return rows


def assert_estate_consistent(estate: Estate) -> None:
    """Invariants every flow keeps, across services' own data."""
    assert estate.orders.execute(
        "SELECT count(*) FROM orders o WHERE total_cents <> (SELECT COALESCE(sum(qty * unit_price_cents"
        " - discount_cents), 0) FROM order_lines l WHERE l.order_id = o.id)").fetchone()[0] == 0
    assert estate.payments.execute(
        "SELECT count(*) FROM payments p WHERE refunded_cents <> (SELECT COALESCE(sum(amount_cents), 0)"
        " FROM refunds r WHERE r.payment_id = p.id) OR refunded_cents > amount_cents").fetchone()[0] == 0
    assert estate.customers.execute(
        "SELECT count(*) FROM customers c JOIN pending_enrollments e ON e.customer_id = c.id"
        " WHERE c.status_code <> 'P'").fetchone()[0] == 0
    assert _maria_rows(estate.warehouse,
                       "SELECT b.sku, b.site_code FROM bin_stock b LEFT JOIN (SELECT sku, site_code, SUM(qty) AS held"
                       " FROM reservations WHERE hold_state = 'H' GROUP BY sku, site_code) r"
                       " ON r.sku = b.sku AND r.site_code = b.site_code"
                       " WHERE b.qty_allocated <> COALESCE(r.held, 0) OR b.qty_on_hand < b.qty_allocated"
                       " OR b.qty_allocated < 0") == []


def test_same_seed_gives_the_same_operations_as_the_plan(estate_urls):
    first = simulator.run(estate_urls, rate=0, duration=0, operations=400, seed=11, progress=False)
    again = simulator.run(estate_urls, rate=0, duration=0, operations=400, seed=11, progress=False)
    other = simulator.run(estate_urls, rate=0, duration=0, operations=400, seed=12, progress=False)
    assert first.operations == again.operations == 400
    assert first.digest == again.digest == planner.operations_digest(planner.plan(11, 400))
    assert first.per_flow == again.per_flow
    assert other.digest != first.digest
    for report in (first, again, other):
        assert report.errors == {} and report.skipped == 0


def test_simulated_traffic_reaches_the_databases_and_keeps_them_consistent(estate_urls, estate):
    before = {"orders": _count(estate.orders, "orders"), "customers": _count(estate.customers, "customers"),
              "refunds": _count(estate.payments, "refunds")}
    report = simulator.run(estate_urls, rate=0, duration=0, operations=3000, seed=21, workers=2, progress=False)
    assert report.operations == 3000 and report.errors == {} and report.skipped == 0
    assert set(report.per_flow) == {f.value for f in planner.Flow}  # every flow ran
    assert _count(estate.orders, "orders") - before["orders"] == report.per_flow["place_order"]
    assert _count(estate.customers, "customers") - before["customers"] == report.per_flow["register_customer"]
    assert _count(estate.payments, "refunds") - before["refunds"] >= report.per_flow["refund_payment"]
    assert_estate_consistent(estate)


def test_the_rate_limit_paces_operations(estate_urls):
    report = simulator.run(estate_urls, rate=400, duration=30, operations=100, seed=3, progress=False)
    assert report.operations == 100
    assert report.elapsed_s >= 99 / 400  # never faster than asked


def test_progress_display_renders_without_failing(estate_urls):
    report = simulator.run(estate_urls, rate=0, duration=0, operations=50, seed=4, progress=True)
    assert report.operations == 50 and str(report).startswith("50 operations")


def test_benchmark_returns_the_achieved_operations_per_second(estate_urls):
    assert simulator.benchmark(estate_urls, duration=0.5) > 0


def test_bulk_load_fills_every_table_consistently_and_the_simulator_continues(estate_urls, estate):
    before_orders = _count(estate.orders, "orders")
    report = simulator.bulk_load(estate_urls, orders=3000, seed=5, customers=500, catalog_size=300, progress=False)
    rows = report.rows
    assert rows["orders"] == 3000 and rows["payments"] == 3000 and rows["customers"] == 500
    assert rows["order_lines"] >= 3000 and rows["addresses"] == 500
    assert 0 < rows["refunds"] < 3000 and 0 < rows["fulfilments"] <= 3000 and rows["reservations"] > 0
    assert _count(estate.orders, "orders") - before_orders == 3000
    assert_estate_consistent(estate)
    # ids continue after the loaded rows: live traffic right after a bulk load has no key clashes
    after = simulator.run(estate_urls, rate=0, duration=0, operations=300, seed=6, progress=False)
    assert after.errors == {}


def test_canaries_sit_only_in_secret_columns(estate_urls):
    canaries = plant_canaries(estate_urls)
    with connect_postgres(estate_urls["customers"]) as customers:
        assert customers.execute("SELECT password_hash FROM customers WHERE id = %s",
                                 (canaries.customer_id,)).fetchone()[0] == canaries.password_hash
    with connect_postgres(estate_urls["payments"]) as payments:
        assert payments.execute("SELECT card_token FROM payments WHERE id = %s",
                                (canaries.payment_id,)).fetchone()[0] == canaries.card_token
    assert canaries.marker in canaries.password_hash and canaries.marker in canaries.card_token
    # the marker must not be visible through any column the connectors capture
    for name in ("customers", "orders", "payments"):
        service = SERVICES[name]
        secret = set(service.secret_columns)
        with connect_postgres(estate_urls[name]) as conn:
            for table in service.metadata.sorted_tables:
                for column in table.columns:
                    if f"{table.name}.{column.name}" in secret:
                        continue
                    hits = conn.execute(
                        psycopg.sql.SQL("SELECT count(*) FROM {} WHERE {}::text LIKE %s").format(
                            psycopg.sql.Identifier(table.name), psycopg.sql.Identifier(column.name)),
                        (f"%{canaries.marker}%",)).fetchone()[0]
                    assert hits == 0, f"canary visible in captured column {name}.{table.name}.{column.name}"


def test_schemas_are_created_idempotently_with_primary_keys_and_out_of_line_terms(estate_urls, estate):
    for name, service in SERVICES.items():
        service.create_schema(estate_urls[name])  # a second time: no error, nothing changes
        for table in service.metadata.sorted_tables:
            assert table.primary_key.columns, f"{name}.{table.name} has no primary key"
    storage = estate.orders.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = 'public.orders'::regclass"
                                    " AND attname = 'terms_snapshot'").fetchone()[0]
    assert storage == "e"
    assert {r[0] for r in _maria_rows(estate.warehouse, "SHOW TABLES")} >= {
        "catalog_items", "bin_stock", "reservations", "fulfilments"}
    kinds = _maria_rows(estate.warehouse, "SELECT column_name, column_type FROM information_schema.columns"
                                          " WHERE table_schema = DATABASE() AND column_name LIKE '%%\\_on'")
    assert kinds and all(t == "datetime(6)" for _, t in kinds)
