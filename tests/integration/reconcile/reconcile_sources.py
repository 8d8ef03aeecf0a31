"""Orders source data and an independent oracle of the contract rows a correct pipeline stores
(shared by the reconciliation tests and scripts/bench; written without the projection code)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

from pipelines.contract.ddl import qualified_name, quote_ident

ORDERS_DDL = """
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_ref bigint NOT NULL,
  state_code smallint NOT NULL,
  total_cents bigint NOT NULL,
  currency_iso char(3) NOT NULL,
  created_ts timestamptz NOT NULL,
  modified_ts timestamptz NOT NULL,
  fraud_score numeric(5,4),
  internal_note text,
  terms_snapshot text NOT NULL,
  metadata jsonb
);
CREATE TABLE order_lines (
  order_id bigint REFERENCES orders(id) ON DELETE CASCADE,
  line_no smallint,
  sku varchar(32) NOT NULL,
  qty integer NOT NULL,
  unit_price_cents bigint NOT NULL,
  discount_cents bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (order_id, line_no)
);
"""


UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
V1 = {10: "PLACED", 20: "PAID", 30: "PACKED", 40: "SHIPPED", 90: "CANCELLED", 95: "CANCELLED"}
V2 = {**V1, 95: "REFUNDED"}
STATES = (10, 20, 30, 40, 90, 95)
CHANNELS = ("web", "app", None, "store")


def make_orders(n: int = 40) -> tuple[list[tuple], list[tuple]]:
    orders, lines = [], []
    for i in range(1, n + 1):
        zone = dt.timezone(dt.timedelta(hours=(i % 5) - 2, minutes=30 * (i % 2)))
        created = (T0 + dt.timedelta(hours=i, microseconds=i * 7)).astimezone(zone)
        modified = created + dt.timedelta(minutes=i, microseconds=1)
        channel = CHANNELS[i % 4]
        meta = None if i % 7 == 0 else ({"utm": {"source": "mail"}, "channel": channel} if channel else {"x": 1})
        orders.append((i, 1000 + i % 9, STATES[i % 6], 199 * i + (i % 3), ["eur", "usd", "gbp"][i % 3],
                       created, modified, meta))
        for line_no in range(1, 1 + i % 3):
            lines.append((i, line_no, f"SKU-{i:03d}-{line_no}", line_no + i % 4, 999 + line_no, 50 * (line_no - 1)))
    return orders, lines


def load_source(conninfo: str, orders: list[tuple], lines: list[tuple]) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(ORDERS_DDL)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO orders (id, customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts, "
                "fraud_score, internal_note, terms_snapshot, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, 0.5, "
                "'internal', repeat('terms ', 500), %s)",
                [(*o[:7], Jsonb(o[7]) if o[7] is not None else None) for o in orders])
            cur.executemany("INSERT INTO order_lines VALUES (%s, %s, %s, %s, %s, %s)", lines)


def oracle(orders: list[tuple], lines: list[tuple]) -> dict[str, list[tuple]]:
    """What a correct pipeline stores, written independently of the projection code."""
    v1, v2, ol = [], [], []
    for oid, cust, state, cents, cur, created, modified, meta in orders:
        amount = Decimal(cents) / 100
        v1.append((oid, cust, V1[state], amount, cur.upper(), created, modified))
        channel = meta.get("channel") if isinstance(meta, dict) else None
        v2.append((oid, cust, V2[state], amount, cur.upper(), created, modified, channel))
    for oid, line_no, sku, qty, price, discount in lines:
        ol.append((oid, line_no, sku, qty, Decimal(price) / 100, Decimal(qty * price - discount) / 100))
    return {"orders_v1": v1, "orders_v2": v2, "order_lines_v1": ol}


def write_reporting(backend, contracts, rows_by_table: dict[str, list[tuple]]) -> None:
    backend.ensure_schema([contracts[n] for n in rows_by_table])
    now = dt.datetime.now(UTC)
    for name, rows in rows_by_table.items():
        c = contracts[name]
        cols = [*c.column_names, "_source_position", "_source_ts", "_ingested_at", "_op"]
        marks = ", ".join("?" * len(cols))
        sql = f"INSERT INTO {qualified_name(c)} ({', '.join(quote_ident(x) for x in cols)}) VALUES ({marks})"
        for row in rows:
            backend.execute(sql, (*row, 1, now, now, "r"))
