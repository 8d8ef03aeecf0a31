"""The orders service's private PostgreSQL schema (database `orders`, schema `public`), fixed by the shared brief.

Contracts orders_v1/v2 come from `orders`, order_lines_v1 from `order_lines`; state codes are in
`estate.domain.OrderState`. `terms_snapshot` (the checkout terms, > 2 kB) is stored with
STORAGE EXTERNAL so PostgreSQL always keeps it out of line (TOAST, uncompressed): updates that do
not touch it reach Debezium without its value (the unchanged-TOAST placeholder), as in real life.

INTERNAL (excluded at the connector): orders.fraud_score, orders.internal_note.
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

metadata = MetaData(schema="public")
TSTZ = TIMESTAMP(timezone=True)

orders = Table(
    "orders",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),  # BIGSERIAL
    Column("customer_ref", BigInteger, nullable=False, comment="customers.id in the customers service"),
    Column("state_code", SmallInteger, nullable=False,
           comment="10 placed, 20 paid, 30 packed, 40 shipped, 90 cancelled, 95 refunded"),
    Column("total_cents", BigInteger, nullable=False),
    Column("currency_iso", CHAR(3), nullable=False, comment="lower case, e.g. eur"),
    Column("created_ts", TSTZ, nullable=False),
    Column("modified_ts", TSTZ, nullable=False),
    Column("fraud_score", Numeric(5, 4), comment="INTERNAL"),
    Column("internal_note", Text, comment="INTERNAL"),
    Column("terms_snapshot", Text, nullable=False, comment="checkout terms (> 2 kB), stored out of line"),
    Column("metadata", JSONB, comment='e.g. {"channel": "web", "utm": {...}}'),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", BigInteger, ForeignKey("public.orders.id", ondelete="CASCADE"), primary_key=True),
    Column("line_no", SmallInteger, primary_key=True),
    Column("sku", String(32), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("unit_price_cents", BigInteger, nullable=False),
    Column("discount_cents", BigInteger, nullable=False, server_default=text("0")),
)

# Always out of line and uncompressed, whatever the text compresses to (see `services.create_schema`).
POST_CREATE_DDL = (
    "DO $$ BEGIN IF (SELECT attstorage FROM pg_attribute WHERE attrelid = 'public.orders'::regclass"
    " AND attname = 'terms_snapshot') <> 'e' THEN"
    " ALTER TABLE public.orders ALTER COLUMN terms_snapshot SET STORAGE EXTERNAL; END IF; END $$",
)

SECRET_COLUMNS = ("orders.fraud_score", "orders.internal_note")
