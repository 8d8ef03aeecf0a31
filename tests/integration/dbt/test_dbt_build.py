"""`dbt build` on DuckDB and on a real PostgreSQL 15: green, and the marts hold the hand-computed numbers.

Expected figures come from the dataset described in musiccorp_dataset.py (amounts in major units).
Every test runs once per target (the `reporting` fixture is parametrised).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

pytestmark = pytest.mark.integration

D = Decimal
MAY1, MAY2 = dt.date(2024, 5, 1), dt.date(2024, 5, 2)
MARTS = ("dim_customers", "dim_products", "fct_daily_revenue", "fct_fulfilment_funnel", "fct_order_fulfilment",
         "fct_order_lines", "fct_orders_v1", "fct_orders_v2", "fct_payments", "fct_stock_levels", "fct_stock_outs",
         "fct_verification_funnel")


def test_build_is_green_with_every_test_passing(reporting):
    results = reporting.artifact("run_results.json")["results"]
    statuses = {}
    for r in results:
        statuses.setdefault(r["status"], []).append(r["unique_id"])
    assert set(statuses) <= {"success", "pass"}, {k: v for k, v in statuses.items() if k not in ("success", "pass")}
    kinds = [r["unique_id"].split(".")[0] for r in results]
    assert kinds.count("model") == 7 + len(MARTS)
    assert kinds.count("unit_test") == 3
    assert kinds.count("test") > 150  # sources, staging and marts: keys, not_null, accepted_values, relationships


def test_source_freshness_passes_on_fresh_rows(reporting):
    done = reporting.dbt("source", "freshness")
    assert done.returncode == 0, done.stdout[-4000:]
    results = reporting.artifact("sources.json")["results"]
    assert len(results) == 7
    assert {r["status"] for r in results} == {"pass"}


def test_models_land_in_staging_and_marts_schemas(reporting):
    rows = reporting.query("select table_schema, table_name, table_type from information_schema.tables"
                           " where table_schema in ('staging', 'marts', 'analytics')")
    marts = {name for schema, name, _ in rows if schema == "marts"}
    staging = {name for schema, name, _ in rows if schema == "staging"}
    assert marts == {*MARTS, "fct_orders"}
    assert staging == {"stg_customers", "stg_order_lines", "stg_orders", "stg_payments", "stg_products",
                       "stg_shipments", "stg_stock_levels"}
    types = {(schema, name): kind for schema, name, kind in rows}
    assert types[("marts", "fct_orders")] == "VIEW"  # pointer to the latest version
    assert types[("marts", "fct_daily_revenue")] == "BASE TABLE"
    assert types[("staging", "stg_orders")] == "VIEW"


def test_mart_columns_are_exactly_the_enforced_contract(reporting):
    manifest = reporting.artifact("manifest.json")
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["schema"] != "marts":
            continue
        assert node["config"]["contract"]["enforced"], node["unique_id"]
        table = node["alias"]
        got = [r[0] for r in reporting.query(
            "select column_name from information_schema.columns where table_schema = 'marts'"
            f" and table_name = '{table}' order by ordinal_position")]
        assert got == list(node["columns"]), table


def test_daily_revenue_is_captured_minus_refunded_per_utc_day_and_currency(reporting):
    rows = reporting.query(
        "select revenue_date, currency, captured_payment_count, order_count, refunded_payment_count,"
        " gross_captured_amount, refunded_amount, net_revenue from marts.fct_daily_revenue order by 1, 2")
    assert rows == [
        # 7001 (37.49) + 7002 (58.00, captured 23:45 UTC = May 2 in Berlin, still May 1 in UTC)
        (MAY1, "EUR", 2, 2, 0, D("95.49"), D("0.00"), D("95.49")),
        # 7003 captured 20.00 and refunded in full
        (MAY1, "GBP", 1, 1, 1, D("20.00"), D("20.00"), D("0.00")),
        # 7004 captured 49.98, 24.99 refunded; 7005 voided, 7006 authorised, 7008 failed: not revenue
        (MAY2, "EUR", 1, 1, 1, D("49.98"), D("24.99"), D("24.99")),
    ]


def test_order_fulfilment_stages_and_lead_times(reporting):
    rows = reporting.query(
        "select order_id, fulfilment_stage, is_cancelled, hours_placed_to_paid, hours_paid_to_packed,"
        " hours_packed_to_shipped, hours_placed_to_shipped from marts.fct_order_fulfilment order by order_id")
    assert rows == [
        (5001, "SHIPPED", False, D("0.75"), D("22.00"), D("6.00"), D("28.75")),
        (5002, "PAID", False, D("2.75"), None, None, None),
        (5003, "PAID", True, D("0.25"), None, None, None),
        # the cancelled shipment 8003 (packed 11:00) is ignored: packed 13:15 by shipment 8004
        (5004, "SHIPPED", False, D("0.25"), D("4.00"), D("20.00"), D("24.25")),
        (5005, "PLACED", True, None, None, None, None),
        (5006, "PLACED", False, None, None, None, None),
    ]


def test_fulfilment_funnel(reporting):
    rows = reporting.query(
        "select funnel_stage, orders_reached, conversion_from_placed, conversion_from_previous,"
        " avg_hours_from_previous, median_hours_from_previous from marts.fct_fulfilment_funnel order by stage_rank")
    assert rows == [
        ("PLACED", 6, D("1.0000"), None, None, None),
        ("PAID", 4, D("0.6667"), D("0.6667"), D("1.00"), D("0.50")),
        ("PACKED", 2, D("0.3333"), D("0.5000"), D("13.00"), D("13.00")),
        ("SHIPPED", 2, D("0.3333"), D("1.0000"), D("13.00"), D("13.00")),
    ]


def test_fct_orders_v2_v1_and_latest_pointer(reporting):
    v2 = reporting.query(
        "select order_id, order_status, sales_channel, total_amount, line_count, item_quantity, lines_amount,"
        " captured_amount, refunded_amount, is_refunded from marts.fct_orders_v2 order by order_id")
    assert v2 == [
        (5001, "SHIPPED", "web", D("37.49"), 2, 2, D("37.49"), D("37.49"), D("0.00"), False),
        (5002, "PAID", "app", D("58.00"), 1, 2, D("58.00"), D("58.00"), D("0.00"), False),
        (5003, "REFUNDED", "web", D("20.00"), 1, 2, D("20.00"), D("20.00"), D("20.00"), True),
        (5004, "SHIPPED", None, D("49.98"), 1, 2, D("49.98"), D("49.98"), D("24.99"), False),
        (5005, "CANCELLED", "web", D("12.50"), 1, 1, D("12.50"), D("0.00"), D("0.00"), False),
        (5006, "PLACED", "web", D("29.00"), 1, 1, D("29.00"), D("0.00"), D("0.00"), False),
    ]
    v1 = reporting.query("select order_id, status, is_cancelled from marts.fct_orders_v1 order by order_id")
    assert v1 == [(5001, "SHIPPED", False), (5002, "PAID", False), (5003, "CANCELLED", True),
                  (5004, "SHIPPED", False), (5005, "CANCELLED", True), (5006, "PLACED", False)]
    v1_columns = {r[0] for r in reporting.query(
        "select column_name from information_schema.columns where table_schema = 'marts' and table_name = 'fct_orders_v1'")}
    assert {"status", "placed_at"} <= v1_columns and not {"order_status", "sales_channel"} & v1_columns
    assert reporting.query("select count(*), sum(total_amount) from marts.fct_orders") == [(6, D("206.97"))]


def test_order_lines_and_payments(reporting):
    lines = reporting.query("select order_line_key, sku, quantity, line_amount, discount_amount, product_format"
                            " from marts.fct_order_lines order by order_id, line_number")
    assert [r[0] for r in lines] == ["5001-1", "5001-2", "5002-1", "5003-1", "5004-1", "5005-1", "5006-1"]
    assert lines[0] == ("5001-1", "VIN-001", 1, D("24.99"), D("0.00"), "VINYL")
    payments = reporting.query("select payment_id, customer_id, is_captured, captured_amount, net_amount, captured_date"
                               " from marts.fct_payments order by payment_id")
    assert payments == [
        (7001, 1001, True, D("37.49"), D("37.49"), MAY1),
        (7002, 1002, True, D("58.00"), D("58.00"), MAY1),
        (7003, 1001, True, D("20.00"), D("0.00"), MAY1),
        (7004, 1002, True, D("49.98"), D("24.99"), MAY2),
        (7005, 1003, False, D("0.00"), D("0.00"), None),
        (7006, 1004, False, D("0.00"), D("0.00"), None),
        (7008, 1004, False, D("0.00"), D("0.00"), None),
    ]


def test_customers_and_verification_funnel(reporting):
    customers = reporting.query("select customer_id, customer_status, is_verified, hours_to_verify, order_count,"
                                " active_order_count from marts.dim_customers order by customer_id")
    assert customers == [
        (1001, "VERIFIED", True, D("1.50"), 2, 1),
        (1002, "VERIFIED", True, D("12.00"), 2, 2),
        (1003, "PENDING", False, None, 1, 0),
        (1004, "ERASED", True, D("1.00"), 1, 1),
    ]
    columns = {r[0] for r in reporting.query(
        "select column_name from information_schema.columns where table_schema = 'marts' and table_name = 'dim_customers'")}
    assert not {"email", "full_name"} & columns  # pii stays out of the marts
    funnel = reporting.query("select registration_date, registered_count, verified_count, pending_count, erased_count,"
                             " verification_rate, avg_hours_to_verify from marts.fct_verification_funnel order by 1")
    assert funnel == [
        (MAY1, 2, 2, 0, 0, D("1.0000"), D("6.75")),
        (MAY2, 2, 1, 1, 1, D("0.5000"), D("1.00")),
    ]


def test_stock_levels_and_stock_outs(reporting):
    out_locations = reporting.query("select stock_level_key, available_quantity from marts.fct_stock_levels"
                                    " where is_stock_out order by 1")
    assert out_locations == [("VIN-001@BER-1", 0), ("VIN-003@BER-1", 0), ("VIN-003@LDN-A", 0)]
    products = reporting.query("select sku, location_count, available_quantity, is_out_of_stock from marts.dim_products"
                               " order by sku")
    assert products == [("CAS-004", 0, 0, True), ("CD-002", 1, 4, False), ("VIN-001", 2, 8, False),
                        ("VIN-003", 2, 0, True)]
    # CAS-004 is inactive, so not a stock-out; VIN-003 has 3 units waiting on orders 5002 (paid) and 5006 (placed)
    assert reporting.query("select sku, title, available_quantity, open_order_count, open_order_quantity"
                           " from marts.fct_stock_outs") == [("VIN-003", "Hounds of Love", 0, 2, 3)]


def test_soft_deleted_rows_never_reach_staging_or_marts(reporting):
    assert reporting.query("select count(*) from reporting.orders_v2 where _deleted_at is not null") == [(1,)]
    assert reporting.query("select count(*) from staging.stg_orders where order_id = 5007") == [(0,)]
    assert reporting.query("select count(*) from marts.fct_orders_v2 where order_id = 5007") == [(0,)]
    assert reporting.query("select count(*) from marts.fct_order_lines where order_id = 5007") == [(0,)]
    assert reporting.query("select count(*) from marts.dim_customers where customer_id = 1005") == [(0,)]
    assert reporting.query("select count(*) from marts.dim_products where sku = 'DIG-005'") == [(0,)]


def test_second_build_replaces_marts_in_place(reporting):
    """A scheduled rebuild over existing marts (and the fct_orders pointer view) is green and changes nothing."""
    before = reporting.query("select * from marts.fct_daily_revenue order by 1")
    done = reporting.dbt("build", "--select", "marts")
    assert done.returncode == 0, done.stdout[-4000:]
    assert reporting.query("select * from marts.fct_daily_revenue order by 1") == before
    assert reporting.query("select count(*) from marts.fct_orders") == [(6,)]
