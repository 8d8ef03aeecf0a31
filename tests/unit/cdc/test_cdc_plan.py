"""Batch planning: routing, reduction by position, deletes, TOAST, dead letters, offsets."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from cdc_helpers import FIXTURES, PLACEHOLDER, Col, Contract, order_row, orders_contracts, pg_value, rec

from pipelines.cdc.events import Record, parse_record
from pipelines.cdc.plan import PROVENANCE_COLUMNS, Planner, plan_batch, plan_records
from pipelines.cdc.recordfile import load_records
from pipelines.projection import ProjectionError, parse_projection

pytestmark = pytest.mark.unit

T = "orders.public.orders"


@pytest.fixture()
def planner(orders_projection, contracts):
    return Planner(orders_projection, contracts)


def row_of(table_plan, key_value):
    """The upsert of `key_value` (first key column) as a dict."""
    idx = table_plan.columns.index(table_plan.key_columns[0])
    rows = [r for r in table_plan.upserts if r[idx] == key_value]
    assert len(rows) == 1, rows
    return dict(zip(table_plan.columns, rows[0], strict=True))


def test_pg_fixture_end_to_end(planner):
    records = load_records(FIXTURES / "pg_orders.json")
    plan = planner.plan_records(records)
    assert plan.dead_letters == []
    v1, v2, lines = plan.tables["orders_v1"], plan.tables["orders_v2"], plan.tables["order_lines_v1"]
    assert v1.columns == ("order_id", "customer_id", "status", "total_amount", "currency", "placed_at",
                          "updated_at", *PROVENANCE_COLUMNS)
    assert v1.key_columns == ("order_id",) and v1.key_indexes == (0,)
    snap = row_of(v1, 1001)
    assert snap["status"] == "PAID" and snap["total_amount"] == Decimal("45.99") and snap["currency"] == "EUR"
    assert snap["_op"] == "r" and snap["_source_position"] == 24_023_000
    assert snap["_source_ts"] == datetime(2024, 11, 25, 9, 59, tzinfo=UTC)
    # 1002: created, updated twice (one TOAST update), then deleted: only the delete survives
    assert [r[0] for r in v1.upserts] == [1001]
    assert v1.deletes == [((1002,), 24_024_000, datetime(2024, 11, 25, 12, 0, tzinfo=UTC))]
    assert v2.deletes == v1.deletes and v1.keep_masks is None
    assert row_of(v2, 1001)["sales_channel"] == "web"
    assert sorted(r[:2] for r in lines.upserts) == [(1001, 1), (1002, 1)]
    assert row_of(lines, 1002)["line_amount"] == Decimal("123.45")
    assert plan.offsets == {(T, 0): 5, ("orders.public.order_lines", 0): 1, ("orders.transaction", 0): 1,
                            ("__debezium-heartbeat.orders", 0): 0}
    assert plan.next_offsets()[(T, 0)] == 6
    assert (plan.records, plan.changes, plan.superseded, plan.skipped) == (11, 7, 3, 4)


def test_pg_fixture_without_the_delete_keeps_the_toast_filled_update(planner):
    records = [r for r in load_records(FIXTURES / "pg_orders.json") if r.offset < 4 or r.topic != T]
    plan = planner.plan_records(records)
    v2 = row_of(plan.tables["orders_v2"], 1002)
    # the newest update had metadata as a TOAST placeholder: the older in-batch value fills it
    assert v2["order_status"] == "PACKED" and v2["sales_channel"] == "web" and v2["_op"] == "u"
    assert plan.tables["orders_v2"].keep_masks is None


def test_events_api_matches_records_api(orders_projection, contracts):
    records = load_records(FIXTURES / "pg_orders.json")
    events = [parse_record(r) for r in records]
    a = plan_batch(events, orders_projection, contracts)
    b = plan_records(records, orders_projection, contracts)
    assert a.tables == b.tables and a.offsets == b.offsets


def test_plan_batch_caches_the_compiled_planner(orders_projection, contracts):
    from pipelines.cdc import plan as plan_module

    plan_batch([], orders_projection, contracts)
    cached = plan_module._CACHE[(id(orders_projection), id(contracts))][2]
    plan_batch([], orders_projection, contracts)
    assert plan_module._CACHE[(id(orders_projection), id(contracts))][2] is cached


def test_newest_change_per_key_wins(planner):
    plan = planner.plan_records([
        rec(pg_value("c", after=order_row(1, state_code=10), lsn=100), 0),
        rec(pg_value("u", after=order_row(1, state_code=20), lsn=200), 1),
        rec(pg_value("u", after=order_row(1, state_code=30), lsn=300), 2),
        rec(pg_value("c", after=order_row(2, state_code=10), lsn=150), 3),
    ])
    v1 = plan.tables["orders_v1"]
    assert len(v1.upserts) == 2
    assert row_of(v1, 1)["status"] == "PACKED" and row_of(v1, 1)["_source_position"] == 300
    assert row_of(v1, 1)["_op"] == "u" and row_of(v1, 2)["_op"] == "c"
    assert plan.superseded == 2


def test_position_beats_arrival_order(planner):
    plan = planner.plan_records([
        rec(pg_value("u", after=order_row(1, state_code=30), lsn=300), 0),
        rec(pg_value("u", after=order_row(1, state_code=20), lsn=200), 1),  # replayed older change
    ])
    assert row_of(plan.tables["orders_v1"], 1)["status"] == "PACKED"


def test_kafka_offset_breaks_position_ties(planner):
    plan = planner.plan_records([
        rec(pg_value("r", after=order_row(1, state_code=10), lsn=50), 7),
        rec(pg_value("r", after=order_row(1, state_code=20), lsn=50), 8),
        rec(pg_value("r", after=order_row(1, state_code=30), lsn=50), 6),
    ])
    assert row_of(plan.tables["orders_v1"], 1)["status"] == "PAID"


def test_delete_then_create_is_an_upsert_and_create_then_delete_a_delete(planner):
    plan = planner.plan_records([
        rec(pg_value("d", before={"id": 1}, lsn=100), 0),
        rec(None, 1, key={"id": 1}),
        rec(pg_value("c", after=order_row(1), lsn=200), 2),
        rec(pg_value("c", after=order_row(2), lsn=300), 3),
        rec(pg_value("d", before={"id": 2, "customer_ref": 0}, lsn=400, ts_ms=1732528900000), 4),
        rec(None, 5, key={"id": 2}),
    ])
    v1 = plan.tables["orders_v1"]
    assert [r[0] for r in v1.upserts] == [1]
    assert v1.deletes == [((2,), 400, datetime(2024, 11, 25, 10, 1, 40, tzinfo=UTC))]
    assert plan.offsets == {(T, 0): 5} and plan.skipped == 2


def test_delete_takes_only_the_key_from_replica_identity_default_before(planner):
    before = {"id": 9, "customer_ref": 0, "state_code": 0, "total_cents": 0, "currency_iso": "",
              "created_ts": "1970-01-01T00:00:00Z", "modified_ts": "1970-01-01T00:00:00Z", "metadata": None}
    plan = planner.plan_records([rec(pg_value("d", before=before, lsn=10), 0)])
    assert plan.tables["orders_v1"].deletes == [((9,), 10, datetime(2024, 11, 25, 10, tzinfo=UTC))]
    assert plan.tables["orders_v1"].upserts == [] and plan.dead_letters == []


def test_tombstone_alone_is_skipped_but_its_offset_counts(planner):
    plan = planner.plan_records([rec(None, 41, key={"id": 1})])
    assert plan.tables == {} and plan.dead_letters == [] and plan.offsets == {(T, 0): 41}


def test_heartbeats_transactions_schema_changes_advance_offsets_only(planner):
    records = [
        Record("__debezium-heartbeat.orders", 0, 12, b'{"serverName":"orders"}', b'{"ts_ms": 1}'),
        Record("orders.transaction", 2, 30, b'{"id":"1:2"}', b'{"status":"BEGIN","id":"1:2","ts_ms":1}'),
        Record("warehouse", 0, 3, b'{"databaseName":"warehouse"}',
               b'{"source":{"connector":"mariadb"},"databaseName":"warehouse","ddl":"ALTER TABLE x"}'),
    ]
    plan = planner.plan_records(records)
    assert plan.tables == {} and plan.dead_letters == [] and plan.skipped == 3
    assert plan.offsets == {("__debezium-heartbeat.orders", 0): 12, ("orders.transaction", 2): 30, ("warehouse", 0): 3}


def test_toast_fill_from_older_change_in_batch(planner):
    plan = planner.plan_records([
        rec(pg_value("c", after=order_row(1, metadata='{"channel": "app"}'), lsn=100), 0),
        rec(pg_value("u", after=order_row(1, state_code=20, metadata=PLACEHOLDER, terms_snapshot=PLACEHOLDER),
                     lsn=200), 1),
        rec(pg_value("u", after=order_row(1, state_code=30, metadata=PLACEHOLDER, terms_snapshot=PLACEHOLDER),
                     lsn=300), 2),
    ])
    v2 = plan.tables["orders_v2"]
    assert row_of(v2, 1)["sales_channel"] == "app" and row_of(v2, 1)["order_status"] == "PACKED"
    assert v2.keep_masks is None


def test_toast_without_older_value_keeps_the_stored_column(planner):
    plan = planner.plan_records([
        rec(pg_value("c", after=order_row(1), lsn=100), 0),
        rec(pg_value("u", after=order_row(2, metadata=PLACEHOLDER), lsn=200), 1),
        rec(pg_value("c", after=order_row(3), lsn=300), 2),
    ])
    v1, v2 = plan.tables["orders_v1"], plan.tables["orders_v2"]
    assert v1.keep_masks is None  # v1 does not read metadata
    assert len(v2.keep_masks) == len(v2.upserts) == 3
    channel = v2.columns.index("sales_channel")
    masks = {r[0]: m for r, m in zip(v2.upserts, v2.keep_masks, strict=True)}
    assert masks[2] == tuple(i == channel for i in range(len(v2.columns)))
    assert not any(masks[1]) and not any(masks[3])
    assert row_of(v2, 2)["sales_channel"] is None  # placeholder value; the mask says keep


def test_toast_after_a_delete_in_batch_is_not_filled_from_before_the_delete(planner):
    plan = planner.plan_records([
        rec(pg_value("c", after=order_row(1, metadata='{"channel": "app"}'), lsn=100), 0),
        rec(pg_value("d", before={"id": 1}, lsn=200), 1),
        rec(pg_value("u", after=order_row(1, metadata=PLACEHOLDER), lsn=300), 2),
    ])
    assert plan.tables["orders_v2"].keep_masks is not None


def test_unknown_topic_is_a_route_dead_letter(planner):
    value = pg_value("c", "invoices", after={"id": 1}, lsn=5)
    plan = planner.plan_records([rec(value, 3, topic="orders.public.invoices")])
    (dl,) = plan.dead_letters
    assert (dl.topic, dl.partition, dl.offset, dl.stage, dl.target) == ("orders.public.invoices", 0, 3, "route", None)
    assert dl.reason == "no projection for topic orders.public.invoices (source table public.invoices)"
    assert orjson.loads(dl.value)["op"] == "c" and orjson.loads(dl.key) == {"id": 1}
    assert plan.offsets == {("orders.public.invoices", 0): 3}


def test_undecodable_record_is_a_decode_dead_letter_and_the_batch_goes_on(planner):
    plan = planner.plan_records([
        Record(T, 0, 0, b'{"id":1}', b"{garbage"),
        rec(pg_value("c", after=order_row(1), lsn=10), 1),
    ])
    (dl,) = plan.dead_letters
    assert (dl.stage, dl.offset, dl.value) == ("decode", 0, b"{garbage")
    assert dl.reason.startswith("value is not valid JSON")
    assert [r[0] for r in plan.tables["orders_v1"].upserts] == [1]
    assert plan.offsets == {(T, 0): 1} and plan.records == 2


def test_missing_source_column_dead_letters_every_target(planner):
    row = order_row(1)
    del row["modified_ts"]
    plan = planner.plan_records([rec(pg_value("u", after=row, lsn=10), 0)])
    assert [(d.stage, d.target, d.reason) for d in plan.dead_letters] == [
        ("drift", "orders_v1", "source column modified_ts missing in public.orders (schema drift?)"),
        ("drift", "orders_v2", "source column modified_ts missing in public.orders (schema drift?)"),
    ]
    assert plan.tables["orders_v1"].upserts == []


def test_missing_key_column_is_a_drift_dead_letter(planner):
    row = order_row(1)
    del row["id"]
    plan = planner.plan_records([rec(pg_value("u", after=row, lsn=10), 0, key={"id": 1})])
    (dl,) = plan.dead_letters
    assert (dl.stage, dl.reason) == ("drift", "source column id missing in public.orders (schema drift?)")


def test_type_drift_in_a_column_only_one_target_reads(planner):
    plan = planner.plan_records([rec(pg_value("u", after=order_row(1, metadata={"channel": "web"}), lsn=10), 0)])
    (dl,) = plan.dead_letters
    assert (dl.stage, dl.target) == ("decode", "orders_v2")
    assert dl.reason.startswith("column public.orders.metadata: {'channel': 'web'} is not a valid json")
    assert [r[0] for r in plan.tables["orders_v1"].upserts] == [1]  # v1 does not read metadata


def test_contract_violation_is_a_validate_dead_letter(planner):
    plan = planner.plan_records([
        rec(pg_value("u", after=order_row(1, currency_iso="euro"), lsn=10), 0),
        rec(pg_value("u", after=order_row(2), lsn=11), 1),
    ])
    assert [(d.stage, d.target, d.reason) for d in plan.dead_letters] == [
        ("validate", "orders_v1", "orders_v1.currency: 'EURO' is longer than varchar(3)"),
        ("validate", "orders_v2", "orders_v2.currency: 'EURO' is longer than varchar(3)"),
    ]
    assert [r[0] for r in plan.tables["orders_v1"].upserts] == [2]


def test_unmapped_value_is_a_project_dead_letter(planner):
    plan = planner.plan_records([rec(pg_value("u", after=order_row(1, state_code=50), lsn=10), 0)])
    assert {d.stage for d in plan.dead_letters} == {"project"}
    assert plan.dead_letters[0].reason == ("orders_v1.status: state_code value 50 has no mapping "
                                           "(add it to values: or set default:)")


def test_refunded_differs_between_majors(planner):
    plan = planner.plan_records([rec(pg_value("u", after=order_row(1, state_code=95), lsn=10), 0)])
    assert row_of(plan.tables["orders_v1"], 1)["status"] == "CANCELLED"
    assert row_of(plan.tables["orders_v2"], 1)["order_status"] == "REFUNDED"


def test_truncate_is_planned_for_every_target(planner):
    # the truncate's planning is covered in detail by test_cdc_truncate.py
    plan = planner.plan_records([rec(pg_value("t", lsn=77), 0, key={"id": None})])
    assert plan.dead_letters == []
    assert {n: tp.truncates[-1][0] for n, tp in plan.tables.items()} == {"orders_v1": 77, "orders_v2": 77}


def test_reporting_prefixed_contract_names_are_accepted(orders_projection):
    contracts = {f"reporting.{k}": v for k, v in orders_contracts().items()}
    assert set(Planner(orders_projection, contracts).topics) == {T, "orders.public.order_lines"}


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.pop("orders_v2"), "target orders_v2 has no contract"),
    (lambda c: c.update(orders_v1=Contract(tuple(x for x in c["orders_v1"].columns if x.name != "currency"),
                                           ("order_id",))), "orders_v1.currency is not a column of the contract"),
    (lambda c: c.update(orders_v1=Contract((*c["orders_v1"].columns, Col("region", "text")), ("order_id",))),
     "orders_v1.region is required by the contract but the projection does not produce it"),
    (lambda c: c.update(orders_v1=Contract(c["orders_v1"].columns, ("customer_id",))),
     "orders_v1: the contract's primary key (customer_id) is not what the projection copies"),
])
def test_planner_checks_projection_against_contracts(orders_projection, change, message):
    contracts = orders_contracts()
    change(contracts)
    with pytest.raises(ProjectionError) as err:
        Planner(orders_projection, contracts)
    assert message in str(err.value) and "projection.yaml:" in str(err.value)


def test_nullable_contract_column_not_projected_is_null(orders_projection):
    contracts = orders_contracts()
    contracts["orders_v1"] = Contract((*contracts["orders_v1"].columns, Col("note", "text", required=False)),
                                      ("order_id",))
    plan = Planner(orders_projection, contracts).plan_records([rec(pg_value("c", after=order_row(1), lsn=1), 0)])
    assert row_of(plan.tables["orders_v1"], 1)["note"] is None


def test_composite_keys_follow_the_contract_key_order(orders_projection):
    contracts = orders_contracts()
    lines = contracts["order_lines_v1"]
    contracts["order_lines_v1"] = Contract(lines.columns, ("line_number", "order_id"))
    plan = Planner(orders_projection, contracts).plan_records([
        rec(pg_value("d", "order_lines", before={"order_id": 7, "line_no": 2}, lsn=9), 0,
            topic="orders.public.order_lines", key={"order_id": 7, "line_no": 2}),
    ])
    assert plan.tables["order_lines_v1"].key_columns == ("line_number", "order_id")
    assert plan.tables["order_lines_v1"].deletes[0][0] == (2, 7)


WAREHOUSE = textwrap.dedent("""\
    service: warehouse
    engine: mariadb
    tables:
      warehouse.stock:
        key: [sku, location]
        columns: {sku: varchar(32), location: varchar(16), on_hand: int, reserved: int, updated_at: timestamp_ms}
        targets:
          stock_levels_v1: {sku: sku, location: location, on_hand: on_hand, reserved: reserved,
                            updated_at: updated_at}
    """)
STOCK = Contract((Col("sku", "varchar", length=32), Col("location", "varchar", length=16), Col("on_hand", "integer"),
                  Col("reserved", "integer"), Col("updated_at", "timestamptz")), ("sku", "location"))


def test_mariadb_fixture(tmp_path):
    planner = Planner(parse_projection(WAREHOUSE), {"stock_levels_v1": STOCK})
    records = load_records(FIXTURES / "mariadb_warehouse.json")
    plan = planner.plan_records(records[:4])  # c, u, schema change, u with a new column
    (row,) = plan.tables["stock_levels_v1"].upserts
    assert row[:5] == ("LP-0042", "BER-1", 10, 1, datetime(2024, 11, 25, 10, 0, 4, tzinfo=UTC))
    assert row[6:] == (datetime(2024, 11, 25, 10, 0, 4, tzinfo=UTC), "u")
    plan = planner.plan_records(records)
    assert plan.tables["stock_levels_v1"].upserts == []
    ((key, position, _ts),) = plan.tables["stock_levels_v1"].deletes
    assert key == ("LP-0042", "BER-1") and position == (4 << 44) | (385 << 12)
    assert plan.offsets == {("warehouse.warehouse.stock", 0): 4, ("warehouse", 0): 0}
    assert plan.dead_letters == [] and plan.skipped == 2


def test_one_planner_routes_several_services(orders_projection, contracts):
    planner = Planner([orders_projection, parse_projection(WAREHOUSE)], {**contracts, "stock_levels_v1": STOCK})
    assert "warehouse.warehouse.stock" in planner.topics and T in planner.topics


def test_events_captured_from_the_real_stack_plan_cleanly(planner):
    plan = planner.plan_records(load_records(FIXTURES / "captured_pg_orders.json"))
    assert plan.dead_letters == []
    v1, v2 = plan.tables["orders_v1"], plan.tables["orders_v2"]
    assert v1.upserts and v1.deletes and len(v2.upserts) == len(v1.upserts)
    assert v1.keep_masks is None and v2.keep_masks is None  # the TOASTed column is not projected
    assert plan.tables["order_lines_v1"].upserts
    assert all(r[v1.columns.index("_source_ts")].tzinfo is not None for r in v1.upserts)


CAPWH = textwrap.dedent("""\
    service: capwh
    engine: mariadb
    tables:
      warehouse.cap_stock:
        key: [sku, loc]
        columns:
          sku: varchar(32)
          loc: varchar(16)
          on_hand: int
          price_cents: bigint
          changed_at: timestamp        # DATETIME(6): micros
          shipped_at: timestamp_ms     # DATETIME(3): millis
          fmt: enum
          active: boolean              # TINYINT(1): 0/1
          doc: json
        targets:
          cap_stock_v1:
            sku: sku
            location: loc
            on_hand: on_hand
            price: cents(price_cents)
            changed_at: changed_at
            shipped_at: shipped_at
            format: "map_fmt"
            is_active: active
            doc_a: "json_get(doc, 'a')"
    """).replace('"map_fmt"', "{map: fmt, values: {LP: VINYL, CD: CD}, default: OTHER}")
CAP_STOCK = Contract((
    Col("sku", "varchar", length=32), Col("location", "varchar", length=16), Col("on_hand", "integer"),
    Col("price", "decimal", precision=10, scale=2), Col("changed_at", "timestamptz"),
    Col("shipped_at", "timestamptz", required=False), Col("format", "varchar", length=16),
    Col("is_active", "boolean"), Col("doc_a", "bigint", required=False)), ("sku", "location"))


def test_mariadb_events_captured_from_the_real_stack():
    planner = Planner(parse_projection(CAPWH), {"cap_stock_v1": CAP_STOCK})
    records = load_records(FIXTURES / "captured_mariadb_capwh.json")
    plan = planner.plan_records(records)
    assert plan.dead_letters == []
    tp = plan.tables["cap_stock_v1"]
    assert tp.upserts or tp.deletes
    for row in tp.upserts:
        r = dict(zip(tp.columns, row, strict=True))
        assert r["changed_at"].tzinfo is not None and type(r["is_active"]) is bool
        assert r["format"] in ("VINYL", "CD", "OTHER") and r["_source_position"] > 0
    assert plan.skipped >= 2  # the schema change, the transaction marker, the tombstone
