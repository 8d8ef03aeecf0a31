"""A small, coherent MusicCorp dataset in the reporting contract tables, and how to load it.

Six live orders tell the whole story (amounts in major units, times UTC, day = 2024-05-01 unless said):
  5001 Alice  SHIPPED   EUR 37.49  placed 10:00, captured 10:45, packed 05-02 08:45, shipped 05-02 14:45
  5002 Bob    PAID      EUR 58.00  placed 21:00, captured 23:45 (still May 1 in UTC, May 2 in Berlin)
  5003 Alice  REFUNDED  GBP 20.00  placed 12:00, captured 12:15, refunded in full
  5004 Bob    SHIPPED   EUR 49.98  placed 05-02 09:00, captured 09:15, half refunded (24.99), packed 13:15,
                                    shipped 05-03 09:15; an earlier shipment was cancelled after packing
  5005 Carol  CANCELLED EUR 12.50  authorisation voided
  5006 Dave   PLACED    EUR 29.00  one failed payment, one authorisation (not captured)
plus soft-deleted rows that must never reach a mart: order 5007 (and its line), customer 1005,
product DIG-005. Stock: VIN-003 is out of stock everywhere (a stock-out with 3 units on open orders),
VIN-001 is out at BER-1 only; CAS-004 is inactive with no stock (not a stock-out).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pipelines.contract.ddl import create_table_sql, provenance_columns, quote_ident
from pipelines.contract.model import Contract
from pipelines.dbt_sources import live_contracts

UTC = dt.UTC


def ts(text: str) -> dt.datetime:
    """'2024-05-01 10:00' as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def d(text: str) -> Decimal:
    return Decimal(text)


DELETED = ts("2024-05-03 00:00")

CUSTOMERS = [
    dict(customer_id=1001, email="alice@example.com", full_name="Alice Archer", country_code="GB",
         status="VERIFIED", registered_at=ts("2024-05-01 08:00"), verified_at=ts("2024-05-01 09:30")),
    dict(customer_id=1002, email="bob@example.com", full_name="Bob Baker", country_code="DE",
         status="VERIFIED", registered_at=ts("2024-05-01 20:00"), verified_at=ts("2024-05-02 08:00")),
    dict(customer_id=1003, email="carol@example.com", full_name=None, country_code="FR",
         status="PENDING", registered_at=ts("2024-05-02 10:00"), verified_at=None),
    dict(customer_id=1004, email="erased-1004@invalid", full_name=None, country_code="GB",
         status="ERASED", registered_at=ts("2024-05-02 11:00"), verified_at=ts("2024-05-02 12:00")),
    dict(customer_id=1005, email="eve@example.com", full_name="Eve", country_code="DE",
         status="PENDING", registered_at=ts("2024-05-01 09:00"), verified_at=None, _deleted_at=DELETED),
]

PRODUCTS = [
    dict(sku="VIN-001", title="Blue Train", artist="John Coltrane", format="VINYL", price=d("24.99")),
    dict(sku="CD-002", title="Kind of Blue", artist="Miles Davis", format="CD", price=d("12.50")),
    dict(sku="VIN-003", title="Hounds of Love", artist="Kate Bush", format="VINYL", price=d("29.00")),
    dict(sku="CAS-004", title="Nevermind", artist="Nirvana", format="CASSETTE", price=d("9.99"), is_active=False),
    dict(sku="DIG-005", title="Homogenic", artist="Bjork", format="DIGITAL", price=d("8.99"), _deleted_at=DELETED),
]

STOCK_LEVELS = [
    dict(sku="VIN-001", location="LDN-A", on_hand=10, reserved=2),
    dict(sku="VIN-001", location="BER-1", on_hand=3, reserved=3),
    dict(sku="CD-002", location="LDN-A", on_hand=5, reserved=1),
    dict(sku="VIN-003", location="LDN-A", on_hand=1, reserved=1),
    dict(sku="VIN-003", location="BER-1", on_hand=0, reserved=0),
]

ORDERS = [
    dict(order_id=5001, customer_id=1001, order_status="SHIPPED", total_amount=d("37.49"), currency="EUR",
         order_placed_at=ts("2024-05-01 10:00"), sales_channel="web"),
    dict(order_id=5002, customer_id=1002, order_status="PAID", total_amount=d("58.00"), currency="EUR",
         order_placed_at=ts("2024-05-01 21:00"), sales_channel="app"),
    dict(order_id=5003, customer_id=1001, order_status="REFUNDED", total_amount=d("20.00"), currency="GBP",
         order_placed_at=ts("2024-05-01 12:00"), sales_channel="web"),
    dict(order_id=5004, customer_id=1002, order_status="SHIPPED", total_amount=d("49.98"), currency="EUR",
         order_placed_at=ts("2024-05-02 09:00"), sales_channel=None),
    dict(order_id=5005, customer_id=1003, order_status="CANCELLED", total_amount=d("12.50"), currency="EUR",
         order_placed_at=ts("2024-05-02 11:00"), sales_channel="web"),
    dict(order_id=5006, customer_id=1004, order_status="PLACED", total_amount=d("29.00"), currency="EUR",
         order_placed_at=ts("2024-05-02 12:30"), sales_channel="web"),
    dict(order_id=5007, customer_id=1001, order_status="PLACED", total_amount=d("24.99"), currency="EUR",
         order_placed_at=ts("2024-05-01 15:00"), sales_channel="web", _deleted_at=DELETED),
]

ORDER_LINES = [
    dict(order_id=5001, line_number=1, sku="VIN-001", quantity=1, unit_price=d("24.99"), line_amount=d("24.99")),
    dict(order_id=5001, line_number=2, sku="CD-002", quantity=1, unit_price=d("12.50"), line_amount=d("12.50")),
    dict(order_id=5002, line_number=1, sku="VIN-003", quantity=2, unit_price=d("29.00"), line_amount=d("58.00")),
    dict(order_id=5003, line_number=1, sku="CD-002", quantity=2, unit_price=d("10.00"), line_amount=d("20.00")),
    dict(order_id=5004, line_number=1, sku="VIN-001", quantity=2, unit_price=d("24.99"), line_amount=d("49.98")),
    dict(order_id=5005, line_number=1, sku="CD-002", quantity=1, unit_price=d("12.50"), line_amount=d("12.50")),
    dict(order_id=5006, line_number=1, sku="VIN-003", quantity=1, unit_price=d("29.00"), line_amount=d("29.00")),
    dict(order_id=5007, line_number=1, sku="VIN-001", quantity=1, unit_price=d("24.99"), line_amount=d("24.99"),
         _deleted_at=DELETED),
]

PAYMENTS = [
    dict(payment_id=7001, order_id=5001, status="CAPTURED", amount=d("37.49"), currency="EUR",
         refunded_amount=d("0"), authorised_at=ts("2024-05-01 10:01"), captured_at=ts("2024-05-01 10:45")),
    dict(payment_id=7002, order_id=5002, status="CAPTURED", amount=d("58.00"), currency="EUR",
         refunded_amount=d("0"), authorised_at=ts("2024-05-01 21:01"), captured_at=ts("2024-05-01 23:45")),
    dict(payment_id=7003, order_id=5003, status="REFUNDED", amount=d("20.00"), currency="GBP",
         refunded_amount=d("20.00"), authorised_at=ts("2024-05-01 12:01"), captured_at=ts("2024-05-01 12:15")),
    dict(payment_id=7004, order_id=5004, status="PARTIALLY_REFUNDED", amount=d("49.98"), currency="EUR",
         refunded_amount=d("24.99"), authorised_at=ts("2024-05-02 09:01"), captured_at=ts("2024-05-02 09:15")),
    dict(payment_id=7005, order_id=5005, status="VOIDED", amount=d("12.50"), currency="EUR",
         refunded_amount=d("0"), authorised_at=ts("2024-05-02 11:01"), captured_at=None),
    dict(payment_id=7006, order_id=5006, status="AUTHORISED", amount=d("29.00"), currency="EUR",
         refunded_amount=d("0"), authorised_at=ts("2024-05-02 12:40"), captured_at=None),
    dict(payment_id=7008, order_id=5006, status="FAILED", amount=d("29.00"), currency="EUR",
         refunded_amount=d("0"), authorised_at=ts("2024-05-02 12:31"), captured_at=None),
]

SHIPMENTS = [
    dict(shipment_id=8001, order_id=5001, status="SHIPPED", carrier="DHL", tracking_number="DHL-0001",
         picked_at=ts("2024-05-02 08:00"), packed_at=ts("2024-05-02 08:45"), shipped_at=ts("2024-05-02 14:45")),
    dict(shipment_id=8002, order_id=5002, status="PICKING", carrier=None, tracking_number=None,
         picked_at=ts("2024-05-02 10:00"), packed_at=None, shipped_at=None),
    dict(shipment_id=8003, order_id=5004, status="CANCELLED", carrier="DHL", tracking_number=None,
         picked_at=ts("2024-05-02 10:00"), packed_at=ts("2024-05-02 11:00"), shipped_at=None),
    dict(shipment_id=8004, order_id=5004, status="SHIPPED", carrier="Royal Mail", tracking_number="RM-0004",
         picked_at=ts("2024-05-02 12:00"), packed_at=ts("2024-05-02 13:15"), shipped_at=ts("2024-05-03 09:15")),
]


def _with_defaults(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """Fill the columns every row of `table` has the same way (updated_at, currency, is_active)."""
    row = dict(row)
    if table == "products":
        row.setdefault("currency", "EUR")
        row.setdefault("is_active", True)
    if table in ("orders", "payments", "products", "stock_levels", "shipments"):
        row.setdefault("updated_at", ts("2024-05-03 10:00"))
    return row


DATASET: dict[str, list[dict[str, Any]]] = {
    "customers": CUSTOMERS,
    "products": PRODUCTS,
    "stock_levels": STOCK_LEVELS,
    "orders": ORDERS,
    "order_lines": ORDER_LINES,
    "payments": PAYMENTS,
    "shipments": SHIPMENTS,
}
"""Rows per contract table (contract columns, plus `_deleted_at` for soft-deleted rows)."""


def load(execute: Callable[[str, list[Any] | None], None], contracts: list[Contract], dialect: str,
         ingested_at: dt.datetime) -> None:
    """Create every contract table (`create_table_sql`) and insert DATASET into the live majors.

    `execute(sql, params)` runs one statement with positional parameters (`?` for DuckDB, `%s` for
    psycopg); provenance columns are filled as the pipeline would (`_op` d for deleted rows).
    """
    for contract in contracts:
        for statement in create_table_sql(contract, dialect):
            execute(statement, None)
    mark = "?" if dialect == "duckdb" else "%s"
    position = itertools.count(1000)
    by_table = {c.table: c for c in live_contracts(contracts)}  # what the dbt sources read
    for table, rows in DATASET.items():
        contract = by_table[table]
        names = [c.name for c in contract.columns + provenance_columns(contract)]
        sql = (f"INSERT INTO reporting.{quote_ident(contract.physical_name)} "
               f"({', '.join(quote_ident(n) for n in names)}) VALUES ({', '.join([mark] * len(names))})")
        for raw in rows:
            row = _with_defaults(table, raw)
            deleted = row.get("_deleted_at") is not None
            row.update(_source_position=next(position), _source_ts=ingested_at - dt.timedelta(seconds=5),
                       _ingested_at=ingested_at, _op="d" if deleted else "r")
            unknown = set(row) - set(names)
            if unknown:
                raise ValueError(f"{contract.physical_name}: dataset has columns not in the contract: {sorted(unknown)}")
            execute(sql, [row.get(n) for n in names])


def load_duckdb_file(path, contracts: list[Contract]) -> None:
    """`load` into the DuckDB file `path` (created if missing), with now() as the ingestion time."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        load(lambda sql, params: con.execute(sql, params), contracts, "duckdb", dt.datetime.now(dt.UTC))
    finally:
        con.close()
