"""The warehouse service's private MariaDB schema (database `warehouse`).

Timestamps are DATETIME(6) in UTC (MariaDB has no zone-aware type; the service writes UTC_TIMESTAMP(6)).
Contracts, each from one table, row by row:
- products_v1 ← catalog_items: sku, release_title → title, artist_name → artist, format_code (LP/CD/MC/DL, see
  `estate.domain.MediaFormat`) → format, price_cents / 100 → price, upper(currency_iso) → currency,
  listed (TINYINT(1) 0/1) → is_active, modified_on → updated_at.
- stock_levels_v1 ← bin_stock: sku, site_code → location, qty_on_hand → on_hand, qty_allocated → reserved,
  modified_on → updated_at (rows are hard-deleted when a bin is emptied and retired).
- shipments_v1 ← fulfilments: id → shipment_id, order_ref → order_id, stage_code (1/2/3/9, see
  `estate.domain.FulfilmentStage`) → status, carrier_code → carrier, tracking_ref → tracking_number,
  picked_on → picked_at, packed_on → packed_at, shipped_on → shipped_at, modified_on → updated_at.
`reservations` backs `bin_stock.qty_allocated` and is in no contract.

INTERNAL (excluded at the connector): catalog_items.supplier_cost_cents, fulfilments.picker_id.
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import DATETIME, TINYINT

metadata = MetaData()
DT6 = DATETIME(fsp=6)
_OPTS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

catalog_items = Table(
    "catalog_items",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("release_title", String(200), nullable=False),
    Column("artist_name", String(200), nullable=False),
    Column("format_code", CHAR(2), nullable=False, comment="LP vinyl, CD, MC cassette, DL digital"),
    Column("price_cents", Integer, nullable=False),
    Column("currency_iso", CHAR(3), nullable=False, comment="lower case"),
    Column("listed", TINYINT(1), nullable=False, comment="1 on sale, 0 withdrawn"),
    Column("supplier_cost_cents", Integer, comment="INTERNAL: purchase price"),
    Column("modified_on", DT6, nullable=False),
    **_OPTS,
)

bin_stock = Table(
    "bin_stock",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("site_code", String(16), primary_key=True),
    Column("qty_on_hand", Integer, nullable=False),
    Column("qty_allocated", Integer, nullable=False, comment="units held by reservations"),
    Column("modified_on", DT6, nullable=False),
    **_OPTS,
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("order_ref", BigInteger, nullable=False),
    Column("sku", String(32), nullable=False),
    Column("site_code", String(16), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("hold_state", CHAR(1), nullable=False, comment="H held, R released, C consumed"),
    Column("created_on", DT6, nullable=False),
    Column("modified_on", DT6, nullable=False),
    UniqueConstraint("order_ref", "sku", name="reservations_one_per_order_sku"),
    **_OPTS,
)

fulfilments = Table(
    "fulfilments",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("order_ref", BigInteger, nullable=False),
    Column("stage_code", TINYINT, nullable=False, comment="1 picking, 2 packed, 3 shipped, 9 cancelled"),
    Column("carrier_code", String(32)),
    Column("tracking_ref", String(64)),
    Column("picker_id", Integer, comment="INTERNAL: employee who picked"),
    Column("picked_on", DT6),
    Column("packed_on", DT6),
    Column("shipped_on", DT6),
    Column("modified_on", DT6, nullable=False),
    Index("fulfilments_by_order", "order_ref"),
    **_OPTS,
)

SECRET_COLUMNS = ("catalog_items.supplier_cost_cents", "fulfilments.picker_id")
