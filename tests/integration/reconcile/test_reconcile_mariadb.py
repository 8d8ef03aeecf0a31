"""Reconcile warehouse-like MariaDB tables with a DuckDB reporting file: DATETIME(6) (epoch micros),
DATETIME(3) (epoch millis), TIMESTAMP written in another session time zone (ISO, UTC), TINYINT(1)
booleans, a composite key and hard delete semantics. A correct copy reconciles to zero; each broken row
is reported."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import pytest
from reconcile_sources import write_reporting

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.projection import parse_projection
from pipelines.reconcile import exit_code, reconcile_tables
from pipelines.reconcile.reading import open_source
from tests.integration.estate.conftest import LocalMariaDb  # reused as is; if it moves this import fails

pytestmark = pytest.mark.integration

PROJECTION = """
service: warehouse
engine: mariadb
tables:
  warehouse.bin_stock:
    key: [sku, site_code]
    columns: {sku: varchar(32), site_code: varchar(16), on_hand: integer, allocated: integer, modified_at: datetime(6)}
    targets:
      stock_levels_v1: {sku: sku, location: site_code, on_hand: on_hand, reserved: allocated, updated_at: modified_at}
  warehouse.catalog_items:
    key: [sku]
    columns: {sku: varchar(32), title: varchar(200), artist_name: varchar(200), format_code: char(2),
              price_cents: integer, currency_iso: char(3), listed: boolean, modified_at: timestamp_ms}
    targets:
      products_v1:
        sku: sku
        title: title
        artist: artist_name
        format: {map: format_code, values: {LP: VINYL, CD: CD, MC: CASSETTE, DL: DIGITAL}}
        price: "price_cents / 100"
        currency: "upper(currency_iso)"
        is_active: listed
        updated_at: modified_at
  warehouse.fulfilments:
    key: [id]
    columns: {id: bigint, order_ref: bigint, stage_code: tinyint, carrier_code: varchar(32),
              picked_at: timestamptz, modified_at: datetime(6)}
    targets:
      shipments_v1:
        shipment_id: id
        order_id: order_ref
        status: {map: stage_code, values: {1: PICKING, 2: PACKED, 3: SHIPPED, 9: CANCELLED}}
        carrier: carrier_code
        tracking_number: "concat('TRK-', id)"
        picked_at: picked_at
        updated_at: modified_at
"""

DDL = [
    "CREATE TABLE bin_stock (sku VARCHAR(32), site_code VARCHAR(16), on_hand INT NOT NULL, allocated INT NOT NULL,"
    " modified_at DATETIME(6) NOT NULL, PRIMARY KEY (sku, site_code))",
    "CREATE TABLE catalog_items (sku VARCHAR(32) PRIMARY KEY, title VARCHAR(200) NOT NULL, artist_name VARCHAR(200)"
    " NOT NULL, format_code CHAR(2) NOT NULL, price_cents INT NOT NULL, currency_iso CHAR(3) NOT NULL,"
    " listed TINYINT(1) NOT NULL, modified_at DATETIME(3) NOT NULL)",
    "CREATE TABLE fulfilments (id BIGINT PRIMARY KEY, order_ref BIGINT NOT NULL, stage_code TINYINT NOT NULL,"
    " carrier_code VARCHAR(32), picked_at TIMESTAMP(6) NULL, modified_at DATETIME(6) NOT NULL)",
]
UTC = dt.UTC
T0 = dt.datetime(2026, 5, 4, 8, 15, 30, 654321)  # naive UTC, as the warehouse service writes it
FORMATS = {"LP": "VINYL", "CD": "CD", "MC": "CASSETTE", "DL": "DIGITAL"}
STAGES = {1: "PICKING", 2: "PACKED", 3: "SHIPPED", 9: "CANCELLED"}


@pytest.fixture(scope="module")
def mariadb():
    if shutil.which("mariadb-install-db") is None:  # a failure, not a skip: the coverage must not vanish
        pytest.fail("MariaDB binaries (mariadb-install-db) are missing: run `reporting stack install`")
    server = LocalMariaDb()
    try:
        yield server.start()
    finally:
        server.stop()


def _source_rows():
    stock = [(f"SKU-{i:03d}", site, 10 * i + j, i % 3, T0 + dt.timedelta(seconds=i, microseconds=j))
             for i in range(1, 13) for j, site in enumerate(("DUB", "LEJ"))]
    catalog = [(f"SKU-{i:03d}", f"Title {i}", f"Artist {i % 4}", list(FORMATS)[i % 4], 999 + i, "eur", i % 2,
                (T0 + dt.timedelta(minutes=i)).replace(microsecond=123000 * (i % 3))) for i in range(1, 13)]
    picked_local = dt.timezone(dt.timedelta(hours=2))
    fulfil = [(i, 5000 + i, list(STAGES)[i % 4], None if i % 5 == 0 else "DHL",
               None if i % 4 == 0 else (T0 + dt.timedelta(hours=i)).replace(tzinfo=UTC).astimezone(picked_local),
               T0 + dt.timedelta(hours=i, microseconds=i)) for i in range(1, 11)]
    return stock, catalog, fulfil


def _load(server, stock, catalog, fulfil) -> None:
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=server.port, user="warehouse_app", password=server.password,
                           database="warehouse", autocommit=True)
    try:
        with conn.cursor() as cur:
            for stmt in DDL:
                cur.execute(stmt)
            cur.executemany("INSERT INTO bin_stock VALUES (%s, %s, %s, %s, %s)", stock)
            cur.executemany("INSERT INTO catalog_items VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", catalog)
            cur.execute("SET time_zone = '+02:00'")  # TIMESTAMP literals are read in the session zone
            cur.executemany("INSERT INTO fulfilments VALUES (%s, %s, %s, %s, %s, %s)",
                            [(*f[:4], None if f[4] is None else f[4].replace(tzinfo=None), *f[5:]) for f in fulfil])
    finally:
        conn.close()


def _oracle(stock, catalog, fulfil) -> dict[str, list[tuple]]:
    aware = lambda t: t.replace(tzinfo=UTC)  # noqa: E731
    return {
        "stock_levels_v1": [(s, site, on_hand, alloc, aware(m)) for s, site, on_hand, alloc, m in stock],
        "products_v1": [(s, t, a, FORMATS[f], Decimal(p) / 100, c.upper(), bool(listed), aware(m))
                        for s, t, a, f, p, c, listed, m in catalog],
        "shipments_v1": [(i, o, STAGES[st], car, f"TRK-{i}", picked and picked.astimezone(UTC), None, None, aware(m))
                         for i, o, st, car, picked, m in fulfil],
    }


def test_reconcile_mariadb_source(mariadb, tmp_path, contracts):
    projections = parse_projection(PROJECTION, "warehouse-test.yaml").by_topic
    stock, catalog, fulfil = _source_rows()
    _load(mariadb, stock, catalog, fulfil)
    path = tmp_path / "warehouse.duckdb"
    writer = DuckDbBackend(path)
    write_reporting(writer, contracts, _oracle(stock, catalog, fulfil))
    writer.close()

    def run():
        reader = DuckDbBackend(path, read_only=True)
        try:
            return {r.table: r for r in reconcile_tables(projections, contracts, reader,
                                                         lambda _svc: open_source(mariadb.url()),
                                                         tables=["stock_levels", "products", "shipments"])}
        finally:
            reader.close()

    clean = run()
    assert {n: (r.error, r.source_rows, r.differences) for n, r in clean.items()} == {
        "stock_levels_v1": (None, 24, 0), "products_v1": (None, 12, 0), "shipments_v1": (None, 10, 0)}
    assert exit_code(clean.values()) == 0

    writer = DuckDbBackend(path)
    writer.execute("DELETE FROM reporting.stock_levels_v1 WHERE sku = 'SKU-003' AND location = 'LEJ'")
    writer.execute("UPDATE reporting.stock_levels_v1 SET on_hand = on_hand + 1 WHERE sku = 'SKU-004' AND location = 'DUB'")
    writer.execute("UPDATE reporting.products_v1 SET is_active = NOT is_active WHERE sku = 'SKU-005'")
    writer.execute("UPDATE reporting.products_v1 SET updated_at = updated_at + INTERVAL 1 MILLISECOND WHERE sku = 'SKU-006'")
    writer.execute("UPDATE reporting.shipments_v1 SET picked_at = picked_at + INTERVAL 1 HOUR WHERE shipment_id = 3")
    writer.close()
    res = run()
    stock_r, products_r, ship_r = res["stock_levels_v1"], res["products_v1"], res["shipments_v1"]
    assert (stock_r.missing, stock_r.extra, stock_r.different) == (1, 0, 1)
    assert stock_r.missing_samples[0].key == (("sku", "SKU-003"), ("location", "LEJ"))
    assert [c.column for c in stock_r.different_samples[0].columns] == ["on_hand"]
    assert products_r.different == 2
    assert [[c.column for c in s.columns] for s in products_r.different_samples] == [["is_active"], ["updated_at"]]
    (picked,) = ship_r.different_samples
    assert [(c.column, c.expected) for c in picked.columns] == [("picked_at", "2026-05-04T11:15:30.654321Z")]
    assert exit_code(res.values()) == 1
