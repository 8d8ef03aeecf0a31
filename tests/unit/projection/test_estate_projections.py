"""The customers, payments and warehouse projections, through the real planner and contracts.

Hand-written Debezium envelopes shaped like what the connectors emit (connectors/*/connector.json settings):
PostgreSQL (pgoutput, plain JSON): timestamptz as ISO strings with Z, bigint as numbers, internal
columns absent (column.exclude.list); MariaDB: DATETIME(6) as epoch microseconds, TINYINT(1) as 0/1,
TINYINT as a number (see tests/fixtures/events/captured/mariadb_stock.json). Each goes through
`load_parts(bundled_estate()).plan(records)` — routing, decoding, projection, contract validation — and the test
asserts the contract rows (values and Python types), a delete, and contract violations landing in
dead letters with the stage and target named.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.apply.runner import load_parts
from pipelines.cdc.events import Record
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
TS = "2026-03-14T09:26:53.589793Z"
TS_DT = datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
MICROS = 1_773_480_413_589_793  # the same instant as epoch microseconds (MariaDB DATETIME(6))


@pytest.fixture(scope="module")
def parts():
    return load_parts(bundled_estate())


# --------------------------------------------------------------------------- envelopes


def pg_record(service: str, table: str, op: str, row: dict | None, *, offset: int, lsn: int,
              before: dict | None = None, key: dict | None = None) -> Record:
    """A pgoutput change event as the PostgreSQL connector writes it with schemas disabled."""
    source = {"version": "3.6.1.Final", "connector": "postgresql", "name": service, "ts_ms": 1773480413000,
              "snapshot": "true" if op == "r" else "false", "db": service,
              "sequence": f'["{lsn - 8}","{lsn}"]', "ts_us": 1773480413000000, "ts_ns": 1773480413000000000,
              "schema": "public", "table": table, "txId": 700 + offset, "lsn": lsn, "xmin": None,
              "origin": None, "origin_lsn": None}
    envelope = {"before": before, "after": row, "source": source,
                "transaction": None if op == "r" else {"id": f"{700 + offset}:{lsn}", "total_order": 1,
                                                       "data_collection_order": 1},
                "op": op, "ts_ms": 1773480413100}
    key = key or {"id": (row or before)["id"]}
    return Record(f"{service}.public.{table}", 0, offset, json.dumps(key).encode(), json.dumps(envelope).encode())


def maria_record(table: str, op: str, row: dict | None, *, offset: int, pos: int, key: dict,
                 before: dict | None = None) -> Record:
    """A binlog change event as the MariaDB connector (3.5.0) writes it with schemas disabled."""
    gtid = f"0-184054-{pos}"
    source = {"version": "3.5.0.Final", "connector": "mariadb", "name": "warehouse", "ts_ms": 1773480413000,
              "snapshot": "false", "db": "warehouse", "sequence": None, "ts_us": 1773480413000000,
              "ts_ns": 1773480413000000000, "table": table, "server_id": 184054, "gtid": gtid,
              "file": "mysql-bin.000002", "pos": pos, "row": 0, "thread": None, "query": None}
    envelope = {"before": before, "after": row, "source": source,
                "transaction": {"id": gtid, "total_order": 1, "data_collection_order": 1},
                "op": op, "ts_ms": 1773480413100}
    return Record(f"warehouse.warehouse.{table}", 0, offset, json.dumps(key).encode(), json.dumps(envelope).encode())


def contract_rows(batch, physical_name: str) -> dict[tuple, dict]:
    """{primary key: {contract column: value, plus _op and _is_delete}} of one table in an ApplyBatch."""
    (tb,) = [t for t in batch.tables if t.contract.physical_name == physical_name]
    names = [c.name for c in tb.contract.columns]
    out = {}
    for i in range(len(tb)):
        row = {n: tb.columns[ci][i] for ci, n in enumerate(names)}
        row["_op"], row["_is_delete"] = tb.ops[i], tb.is_delete[i]
        out[tuple(row[k] for k in tb.contract.primary_key)] = row
    return out


def dead(batch) -> dict[int, tuple[str, str | None, str]]:
    """{offset: (stage, target table, reason)} of the batch's dead letters."""
    return {d.offset: (d.stage, d.target_table, d.reason) for d in batch.dead_letters}


# --------------------------------------------------------------------------- customers


def customer(**changes) -> dict:
    row = {"id": 41, "email_address": "ada.lovelace.41@example.com", "display_name": "Ada Lovelace",
           "country_iso": "gb", "status_code": "P", "signup_ts": TS, "verified_ts": None,
           "erased_ts": None, "modified_ts": TS}
    row.update(changes)
    return row


def test_customers_snapshot_then_verification_newest_change_wins(parts):
    batch = parts.plan([
        pg_record("customers", "customers", "r", customer(), offset=0, lsn=1000),
        pg_record("customers", "customers", "u", customer(status_code="V", verified_ts="2026-03-15T08:00:00Z"),
                  offset=1, lsn=2000, before=customer()),
        pg_record("customers", "customers", "c", customer(id=42, email_address="erased-42@erased.invalid",
                                                          display_name=None, country_iso="nl", status_code="E"),
                  offset=2, lsn=3000),
    ])
    assert batch.dead_letters == []
    rows = contract_rows(batch, "customers_v1")
    assert rows[(41,)] == {
        "customer_id": 41, "email": "ada.lovelace.41@example.com", "full_name": "Ada Lovelace",
        "country_code": "GB", "status": "VERIFIED", "registered_at": TS_DT,
        "verified_at": datetime(2026, 3, 15, 8, 0, tzinfo=UTC), "_op": "u", "_is_delete": False}
    erased = rows[(42,)]
    assert (erased["status"], erased["full_name"], erased["country_code"]) == ("ERASED", None, "NL")
    assert type(erased["customer_id"]) is int and erased["registered_at"].tzinfo == UTC


def test_customers_internal_columns_never_reach_a_row_even_if_sent(parts):
    """The connector drops password_hash; should it ever arrive (a misconfigured exclude list), the
    projection still does not read it: no contract row carries it."""
    leak = customer(password_hash="$argon2id$canary-unit$pw", marketing_segment="whale")
    batch = parts.plan([pg_record("customers", "customers", "c", leak, offset=0, lsn=1000)])
    (row,) = contract_rows(batch, "customers_v1").values()
    assert "canary-unit" not in repr(row) and "whale" not in repr(row)


def test_customers_delete(parts):
    before = {**{k: None for k in customer()}, "id": 41}  # REPLICA IDENTITY DEFAULT: only the key is known
    batch = parts.plan([pg_record("customers", "customers", "d", None, offset=5, lsn=9000, before=before)])
    assert batch.dead_letters == []
    assert contract_rows(batch, "customers_v1")[(41,)]["_is_delete"] is True
    assert contract_rows(batch, "customers_v1")[(41,)]["_op"] == "d"


def test_customers_contract_violations_are_dead_letters(parts):
    batch = parts.plan([
        pg_record("customers", "customers", "c", customer(id=1, country_iso="nld"), offset=10, lsn=100),
        pg_record("customers", "customers", "c", customer(id=2, status_code="X"), offset=11, lsn=200),
        pg_record("customers", "customers", "c", customer(id=3, email_address=None), offset=12, lsn=300),
        pg_record("customers", "customers", "c", customer(id=4, signup_ts=1773480413589793), offset=13, lsn=400),
        pg_record("customers", "customers", "c", customer(id=5), offset=14, lsn=500),
    ])
    dl = dead(batch)
    assert set(dl) == {10, 11, 12, 13}
    assert dl[10][:2] == ("validate", "customers_v1") and "country_code" in dl[10][2]
    assert dl[11][:2] == ("project", "customers_v1") and "'X'" in dl[11][2]
    assert dl[12][:2] == ("validate", "customers_v1") and "email" in dl[12][2]
    assert dl[13][0] == "decode" and "signup_ts" in dl[13][2]
    assert set(contract_rows(batch, "customers_v1")) == {(5,)}  # the stream goes on


def test_unprojected_customer_tables_would_be_dead_letters(parts):
    """Why the connector captures public.customers only: an addresses event has no projection."""
    address = {"id": 9, "customer_id": 41, "kind": "S", "line1": "1 Main St", "line2": None, "city": "Leeds",
               "postcode": "LS1", "country_iso": "gb", "created_ts": TS}
    batch = parts.plan([pg_record("customers", "addresses", "c", address, offset=0, lsn=10)])
    assert [(d.stage, d.target_table) for d in batch.dead_letters] == [("route", None)]


# --------------------------------------------------------------------------- payments


def payment(**changes) -> dict:
    row = {"id": 7, "order_ref": 501, "state_code": 1, "amount_cents": 4998, "currency_iso": "eur",
           "refunded_cents": 0, "authorised_ts": TS, "captured_ts": None, "modified_ts": TS}
    row.update(changes)
    return row


def test_payments_authorised_row(parts):
    batch = parts.plan([pg_record("payments", "payments", "c", payment(), offset=0, lsn=1000)])
    assert batch.dead_letters == []
    row = contract_rows(batch, "payments_v1")[(7,)]
    assert row == {"payment_id": 7, "order_id": 501, "status": "AUTHORISED", "amount": Decimal("49.98"),
                   "currency": "EUR", "refunded_amount": Decimal("0.00"), "authorised_at": TS_DT,
                   "captured_at": None, "updated_at": TS_DT, "_op": "c", "_is_delete": False}
    assert row["amount"].as_tuple().exponent == -2 and row["refunded_amount"].as_tuple().exponent == -2


@pytest.mark.parametrize(("code", "status"), [(1, "AUTHORISED"), (2, "CAPTURED"), (3, "PARTIALLY_REFUNDED"),
                                              (4, "REFUNDED"), (8, "FAILED"), (9, "VOIDED")])
def test_payments_every_state_code_maps_to_the_contract_enum(parts, code, status):
    captured = {"captured_ts": "2026-03-14T09:30:00.000001Z"} if code in (2, 3, 4) else {}
    refunded = {"refunded_cents": 1000} if code == 3 else {"refunded_cents": 4998} if code == 4 else {}
    batch = parts.plan([pg_record("payments", "payments", "u", payment(state_code=code, **captured, **refunded),
                                  offset=1, lsn=2000, before=payment())])
    row = contract_rows(batch, "payments_v1")[(7,)]
    assert row["status"] == status
    if code == 3:
        assert row["refunded_amount"] == Decimal("10.00")
    if captured:
        assert row["captured_at"] == datetime(2026, 3, 14, 9, 30, 0, 1, tzinfo=UTC)


def test_payments_delete(parts):
    before = {**{k: None for k in payment()}, "id": 7}
    batch = parts.plan([pg_record("payments", "payments", "d", None, offset=3, lsn=5000, before=before)])
    row = contract_rows(batch, "payments_v1")[(7,)]
    assert (row["_op"], row["_is_delete"]) == ("d", True)


def test_payments_contract_violations_are_dead_letters(parts):
    batch = parts.plan([
        pg_record("payments", "payments", "c", payment(id=1, state_code=5), offset=20, lsn=100),
        pg_record("payments", "payments", "c", payment(id=2, amount_cents=10**13), offset=21, lsn=200),
        pg_record("payments", "payments", "c", payment(id=3, amount_cents="4998"), offset=22, lsn=300),
        pg_record("payments", "payments", "c", payment(id=4, authorised_ts=None), offset=23, lsn=400),
    ])
    dl = dead(batch)
    assert dl[20][:2] == ("project", "payments_v1")
    assert dl[21][:2] == ("validate", "payments_v1") and "amount" in dl[21][2]  # > decimal(12,2)
    assert dl[22][0] == "drift" and "amount_cents" in dl[22][2]
    assert dl[23][:2] == ("validate", "payments_v1") and "authorised_at" in dl[23][2]
    assert all(len(t) == 0 for t in batch.tables)  # nothing applied


# --------------------------------------------------------------------------- warehouse (MariaDB)


def catalog_item(**changes) -> dict:
    row = {"sku": "LP-000042", "release_title": "Kind of Blue", "artist_name": "Miles Davis", "format_code": "LP",
           "price_cents": 2499, "currency_iso": "eur", "listed": 1, "modified_on": MICROS}
    row.update(changes)
    return row


def test_products_from_catalog_items(parts):
    batch = parts.plan([
        maria_record("catalog_items", "c", catalog_item(), offset=0, pos=1000, key={"sku": "LP-000042"}),
        maria_record("catalog_items", "c", catalog_item(sku="MC-000007", format_code="MC", listed=0,
                                                        price_cents=5), offset=1, pos=2000, key={"sku": "MC-000007"}),
    ])
    assert batch.dead_letters == []
    rows = contract_rows(batch, "products_v1")
    assert rows[("LP-000042",)] == {
        "sku": "LP-000042", "title": "Kind of Blue", "artist": "Miles Davis", "format": "VINYL",
        "price": Decimal("24.99"), "currency": "EUR", "is_active": True, "updated_at": TS_DT,
        "_op": "c", "_is_delete": False}
    cassette = rows[("MC-000007",)]
    assert (cassette["format"], cassette["is_active"], cassette["price"]) == ("CASSETTE", False, Decimal("0.05"))
    assert type(cassette["is_active"]) is bool


@pytest.mark.parametrize(("code", "fmt"), [("LP", "VINYL"), ("CD", "CD"), ("MC", "CASSETTE"), ("DL", "DIGITAL")])
def test_products_every_format_code_maps(parts, code, fmt):
    batch = parts.plan([maria_record("catalog_items", "c", catalog_item(format_code=code), offset=0, pos=10,
                                     key={"sku": "LP-000042"})])
    assert contract_rows(batch, "products_v1")[("LP-000042",)]["format"] == fmt


def bin_row(**changes) -> dict:
    row = {"sku": "CD-000003", "site_code": "AMS-1", "qty_on_hand": 12, "qty_allocated": 3, "modified_on": MICROS}
    row.update(changes)
    return row


def test_stock_levels_update_then_hard_delete(parts):
    key = {"sku": "CD-000003", "site_code": "AMS-1"}
    other = {"sku": "CD-000003", "site_code": "LDN-2"}
    batch = parts.plan([
        maria_record("bin_stock", "c", bin_row(), offset=0, pos=100, key=key),
        maria_record("bin_stock", "u", bin_row(qty_on_hand=0, qty_allocated=0), offset=1, pos=200, key=key,
                     before=bin_row()),
        maria_record("bin_stock", "d", None, offset=2, pos=300, key=key, before=bin_row(qty_on_hand=0,
                                                                                       qty_allocated=0)),
        Record("warehouse.warehouse.bin_stock", 0, 3, json.dumps(key).encode(), None),  # tombstone
        maria_record("bin_stock", "c", bin_row(site_code="LDN-2", qty_on_hand=4, qty_allocated=4), offset=4,
                     pos=400, key=other),
    ])
    assert batch.dead_letters == []
    rows = contract_rows(batch, "stock_levels_v1")
    assert rows[("CD-000003", "AMS-1")]["_is_delete"] is True
    assert rows[("CD-000003", "LDN-2")] == {"sku": "CD-000003", "location": "LDN-2", "on_hand": 4, "reserved": 4,
                                            "updated_at": TS_DT, "_op": "c", "_is_delete": False}
    assert batch.next_offsets[("warehouse.warehouse.bin_stock", 0)] == 5


def fulfilment(**changes) -> dict:
    row = {"id": 88, "order_ref": 501, "stage_code": 1, "carrier_code": None, "tracking_ref": None,
           "picked_on": MICROS, "packed_on": None, "shipped_on": None, "modified_on": MICROS}
    row.update(changes)
    return row


def test_shipments_from_fulfilments(parts):
    shipped = fulfilment(stage_code=3, carrier_code="postnl", tracking_ref="3SABC0123456789",
                         packed_on=MICROS + 1_000_000, shipped_on=MICROS + 2_000_000, modified_on=MICROS + 2_000_000)
    batch = parts.plan([
        maria_record("fulfilments", "c", fulfilment(), offset=0, pos=100, key={"id": 88}),
        maria_record("fulfilments", "u", shipped, offset=1, pos=200, key={"id": 88}, before=fulfilment()),
        maria_record("fulfilments", "c", fulfilment(id=89, stage_code=9, picked_on=None), offset=2, pos=300,
                     key={"id": 89}),
    ])
    assert batch.dead_letters == []
    rows = contract_rows(batch, "shipments_v1")
    assert rows[(88,)] == {
        "shipment_id": 88, "order_id": 501, "status": "SHIPPED", "carrier": "postnl",
        "tracking_number": "3SABC0123456789", "picked_at": TS_DT,
        "packed_at": datetime(2026, 3, 14, 9, 26, 54, 589793, tzinfo=UTC),
        "shipped_at": datetime(2026, 3, 14, 9, 26, 55, 589793, tzinfo=UTC),
        "updated_at": datetime(2026, 3, 14, 9, 26, 55, 589793, tzinfo=UTC), "_op": "u", "_is_delete": False}
    cancelled = rows[(89,)]
    assert (cancelled["status"], cancelled["picked_at"], cancelled["carrier"]) == ("CANCELLED", None, None)


def test_shipments_delete(parts):
    batch = parts.plan([maria_record("fulfilments", "d", None, offset=0, pos=100, key={"id": 88},
                                     before=fulfilment())])
    row = contract_rows(batch, "shipments_v1")[(88,)]
    assert (row["_op"], row["_is_delete"], row["shipment_id"]) == ("d", True, 88)


def test_warehouse_contract_violations_are_dead_letters(parts):
    batch = parts.plan([
        maria_record("catalog_items", "c", catalog_item(listed=2), offset=0, pos=100, key={"sku": "LP-000042"}),
        maria_record("catalog_items", "c", catalog_item(sku="XX-1", format_code="8T"), offset=1, pos=200,
                     key={"sku": "XX-1"}),
        maria_record("catalog_items", "c", catalog_item(sku="XX-2", modified_on="2026-03-14T09:26:53.589793Z"),
                     offset=2, pos=300, key={"sku": "XX-2"}),
        maria_record("fulfilments", "c", fulfilment(stage_code=4), offset=0, pos=400, key={"id": 88}),
        maria_record("fulfilments", "c", fulfilment(id=90, tracking_ref="T" * 65), offset=1, pos=500,
                     key={"id": 90}),
        maria_record("bin_stock", "c", bin_row(qty_on_hand=3_000_000_000), offset=0, pos=600,
                     key={"sku": "CD-000003", "site_code": "AMS-1"}),
    ])
    dl = {(d.topic.rsplit(".", 1)[1], d.offset): (d.stage, d.target_table, d.reason) for d in batch.dead_letters}
    assert dl[("catalog_items", 0)][0] == "decode" and "listed" in dl[("catalog_items", 0)][2]
    assert dl[("catalog_items", 1)][:2] == ("project", "products_v1")
    assert dl[("catalog_items", 2)][0] == "decode" and "modified_on" in dl[("catalog_items", 2)][2]
    assert dl[("fulfilments", 0)][:2] == ("project", "shipments_v1")
    assert dl[("fulfilments", 1)][:2] == ("validate", "shipments_v1") and "tracking_number" in dl[("fulfilments", 1)][2]
    assert dl[("bin_stock", 0)][:2] == ("validate", "stock_levels_v1") and "on_hand" in dl[("bin_stock", 0)][2]
    assert len(dl) == 6 and all(len(t) == 0 for t in batch.tables)


def test_unprojected_warehouse_table_would_be_a_dead_letter(parts):
    hold = {"id": 1, "order_ref": 501, "sku": "CD-000003", "site_code": "AMS-1", "qty": 1, "hold_state": "H",
            "created_on": MICROS, "modified_on": MICROS}
    batch = parts.plan([maria_record("reservations", "c", hold, offset=0, pos=100, key={"id": 1})])
    assert [d.stage for d in batch.dead_letters] == ["route"]


# --------------------------------------------------------------------------- connectors vs projections


@pytest.mark.parametrize("service", [s.name for s in bundled_estate().services])
def test_each_connector_captures_exactly_its_projected_tables(parts, service):
    """An event for a captured but unprojected table would only ever be a dead letter; a projected
    but uncaptured table would never fill its contract table."""
    config = json.loads(bundled_estate().service(service).connector.read_text())["config"]
    projected = {src for topic, src in parts.source_tables.items() if topic.startswith(f"{service}.")}
    assert set(config["table.include.list"].split(",")) == projected
