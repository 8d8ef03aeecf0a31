"""Decoding Debezium envelopes into ChangeEvents (PostgreSQL and MariaDB connectors)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from cdc_helpers import FIXTURES, order_row, pg_value

from pipelines.cdc.events import ChangeEvent, DecodeError, EventKind, Op, Record, parse, parse_record
from pipelines.cdc.position import encode_binlog_position
from pipelines.cdc.recordfile import dump_records, load_records

pytestmark = pytest.mark.unit

def _fixture(name: str) -> dict[str, ChangeEvent]:
    raw = orjson.loads((FIXTURES / name).read_bytes())
    return {entry["title"]: parse_record(r) for entry, r in zip(raw, load_records(FIXTURES / name), strict=True)}


@pytest.fixture(scope="module")
def pg():
    return _fixture("pg_orders.json")


@pytest.fixture(scope="module")
def maria():
    return _fixture("mariadb_warehouse.json")


def test_pg_fixture_kinds(pg):
    kinds = [(e.kind, e.op) for e in pg.values()]
    assert kinds == [
        (EventKind.CHANGE, Op.READ), (EventKind.CHANGE, Op.READ), (EventKind.TRANSACTION, None),
        (EventKind.CHANGE, Op.CREATE), (EventKind.CHANGE, Op.CREATE), (EventKind.TRANSACTION, None),
        (EventKind.CHANGE, Op.UPDATE), (EventKind.CHANGE, Op.UPDATE), (EventKind.HEARTBEAT, None),
        (EventKind.CHANGE, Op.DELETE), (EventKind.TOMBSTONE, None),
    ]


def test_pg_create(pg):
    e = pg["insert (op c) of order 1002"]
    assert (e.source_table, e.engine, e.position, e.tx_id) == ("public.orders", "postgresql", 24_023_136, "556")
    assert e.source_ts_ms == 1_732_528_800_000
    assert e.key == {"id": 1002}
    assert e.after["state_code"] == 10 and e.before is None
    assert (e.topic, e.partition, e.offset) == ("orders.public.orders", 0, 1)
    assert e.is_create and e.is_change and not (e.is_update or e.is_delete or e.is_snapshot or e.is_tombstone)
    assert e.raw_value is not None and orjson.loads(e.raw_value)["op"] == "c"


def test_tx_id_groups_a_pg_transaction(pg):
    ids = {e.tx_id for e in pg.values() if e.source_ts_ms == 1_732_528_800_000}
    assert ids == {"556"}  # BEGIN, both inserts and END, although their wire ids all differ


def test_pg_snapshot_read_is_snapshot(pg):
    e = pg["snapshot read (op r) of order 1001"]
    assert e.is_snapshot and e.op is Op.READ and e.tx_id == "550"  # no transaction block: txId


def test_pg_delete_has_before_only(pg):
    e = pg["delete (op d) of order 1002"]
    assert e.is_delete and e.after is None and e.before["id"] == 1002 and e.position == 24_024_000


def test_pg_toast_update_keeps_placeholders_raw(pg):
    e = pg["update (op u) of order 1002 with unchanged TOAST columns (placeholders)"]
    assert e.is_update and e.after["metadata"] == "__debezium_unavailable_value"


def test_tombstone_heartbeat_transaction(pg):
    t = pg["tombstone after the delete of order 1002"]
    assert t.is_tombstone and t.source_table == "public.orders" and t.key == {"id": 1002} and t.op is None
    h = pg["heartbeat"]
    assert h.is_heartbeat and h.source_ts_ms == 1_732_532_410_000 and h.key == {"serverName": "orders"}
    b = pg["transaction BEGIN (id <txId>:<lsn>; the lsn part differs per event)"]
    end = pg["transaction END (id carries the commit lsn)"]
    assert b.is_transaction and end.is_transaction and b.tx_id == end.tx_id == "556"


def test_positions_grow_with_the_wal(pg):
    changes = [e for e in pg.values() if e.is_change and e.source_table == "public.orders"]
    positions = [e.position for e in changes]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


def test_mariadb_events(maria):
    c = maria["insert (op c) of stock LP-0042@BER-1"]
    assert (c.engine, c.source_table, c.tx_id) == ("mariadb", "warehouse.stock", "0-1-42")
    assert c.position == encode_binlog_position("mariadb-bin.000003", 4711, 0)
    assert c.key == {"sku": "LP-0042", "location": "BER-1"}
    u = maria["update (op u) of stock LP-0042@BER-1 (full before image)"]
    assert u.before["on_hand"] == 12 and u.after["on_hand"] == 11
    d = maria["delete (op d) of stock LP-0042@BER-1 (full before image)"]
    assert d.is_delete and d.position > u.position  # next binlog file sorts after the previous one
    s = maria["schema change: ALTER TABLE stock ADD COLUMN bin_code"]
    assert s.is_schema_change and s.source_table == "warehouse.stock" and s.op is None and s.engine == "mariadb"
    assert maria["tombstone after the delete"].source_table == "warehouse.stock"


def test_mariadb_position_includes_row_in_event():
    def value(row):
        return orjson.dumps({"before": None, "after": {"sku": "A"}, "op": "c", "ts_ms": 1, "source": {
            "connector": "mariadb", "db": "warehouse", "table": "stock", "file": "mariadb-bin.000001",
            "pos": 100, "row": row, "ts_ms": 1, "gtid": None}})
    first = parse("warehouse.warehouse.stock", 0, 0, None, value(0))
    second = parse("warehouse.warehouse.stock", 0, 1, None, value(1))
    assert second.position == first.position + 1 and first.tx_id is None


def test_mysql_connector_is_read_like_mariadb():
    v = orjson.dumps({"before": None, "after": {"id": 1}, "op": "c", "source": {
        "connector": "mysql", "db": "shop", "table": "t", "file": "binlog.000002", "pos": 4, "row": 0,
        "gtid": "3E11FA47-71CA-11E1-9E33-C80AA9429562:23", "ts_ms": 5}})
    e = parse("p.shop.t", 0, 0, None, v)
    assert e.engine == "mysql" and e.tx_id == "3E11FA47-71CA-11E1-9E33-C80AA9429562:23"


def test_schemas_enabled_wrapper_is_tolerated():
    payload = pg_value("c", after=order_row(7), lsn=77)
    value = orjson.dumps({"schema": {"type": "struct", "fields": []}, "payload": payload})
    key = orjson.dumps({"schema": {"type": "struct"}, "payload": {"id": 7}})
    e = parse("orders.public.orders", 0, 3, key, value)
    assert e.is_create and e.key == {"id": 7} and e.position == 77
    tomb = parse("orders.public.orders", 0, 4, key, orjson.dumps({"schema": None, "payload": None}))
    assert tomb.is_tombstone


def test_heartbeat_payload_on_any_topic_and_on_heartbeat_topic():
    assert parse("custom-heartbeats", 0, 0, None, b'{"ts_ms": 5}').is_heartbeat
    assert parse("__debezium-heartbeat.orders", 0, 0, b'{"serverName":"orders"}', b'{"ts_ms": 5}').is_heartbeat


def test_table_named_transaction_is_still_a_table():
    e = parse("orders.public.transaction", 0, 0, b'{"id":1}',
              orjson.dumps(pg_value("c", "transaction", after={"id": 1, "status": "BEGIN"})))
    assert e.is_change and e.source_table == "public.transaction"


def test_change_event_is_frozen_and_slotted():
    e = parse("orders.public.orders", 0, 0, None, orjson.dumps(pg_value("c", after=order_row())))
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.position = 5  # type: ignore[misc]
    assert not hasattr(e, "__dict__")


@pytest.mark.parametrize("name", ["pg_orders.json", "mariadb_warehouse.json", "captured_pg_orders.json"])
def test_fast_constructor_builds_the_same_events_as_the_dataclass(name):
    for r in load_records(FIXTURES / name):
        e = parse_record(r)
        again = dataclasses.replace(e)  # through the dataclass __init__
        assert again == e and repr(again) == repr(e)
        assert (again.raw_key, again.raw_value) == (e.raw_key, e.raw_value)
        with pytest.raises(dataclasses.FrozenInstanceError):
            e.offset = 1  # type: ignore[misc]


def test_truncate_and_message_ops():
    t = pg_value("t")
    t["after"] = None
    assert parse("orders.public.orders", 0, 0, None, orjson.dumps(t)).op is Op.TRUNCATE
    m = {"op": "m", "ts_ms": 1, "source": {"connector": "postgresql", "schema": "", "table": "", "lsn": 5,
                                           "ts_ms": 1}, "message": {"prefix": "x", "content": "AA=="}}
    assert parse("orders.message", 0, 0, None, orjson.dumps(m)).op is Op.MESSAGE


@pytest.mark.parametrize(("value", "reason"), [
    (b"{not json", "value is not valid JSON"),
    (b"[1, 2]", "value is a JSON array, not an object"),
    (b'{"op": "x", "source": {}}', "unknown op 'x'"),
    (b'{"op": "c", "after": {"id": 1}}', "op 'c' event has no source block"),
    (b'{"op": "c", "after": null, "source": {"connector": "postgresql"}}', "op 'c' event has no 'after' row"),
    (b'{"op": "u", "after": [1], "source": {"connector": "postgresql"}}', "'after' is an array, expected an object"),
    (b'{"op": "d", "before": null, "source": {"connector": "postgresql"}}',
     "delete event has no 'before' row (REPLICA IDENTITY NOTHING?)"),
    (b'{"op": "c", "after": {}, "source": {"connector": "oracle"}}', "unsupported source connector 'oracle'"),
    (b'{"op": "c", "after": {}, "source": {"connector": "postgresql", "lsn": "16/B374D848"}}',
     "LSN '16/B374D848' is not an integer in 0..2**63-1"),
    (b'{"op": "c", "after": {}, "source": {"connector": "postgresql"}}', "LSN None is not an integer in 0..2**63-1"),
    (b'{"op": "c", "after": {}, "source": {"connector": "mariadb", "file": "binlog", "pos": 4}}',
     "binlog file name 'binlog' has no numeric suffix"),
    (b'{"op": "c", "after": {}, "source": {"connector": "mariadb", "file": "b.000001", "pos": -4}}',
     "binlog pos -4 is not an integer in 0..2**32-1"),
    (b'{"status": "MAYBE"}', "value has no 'op' and is no heartbeat, transaction marker or schema change"),
])
def test_decode_errors_are_one_line_reasons(value, reason):
    with pytest.raises(DecodeError) as err:
        parse("orders.public.orders", 0, 9, b'{"id": 1}', value)
    assert err.value.reason.startswith(reason) and "\n" not in str(err.value)


def test_bad_key_is_a_decode_error():
    with pytest.raises(DecodeError, match="key is not valid JSON"):
        parse("orders.public.orders", 0, 0, b"\xff", None)


@pytest.mark.parametrize("name", ["captured_pg_orders.json", "captured_mariadb_capwh.json"])
def test_events_captured_from_the_real_stack_decode(name):
    events = _fixture(name)
    for title, e in events.items():
        kind = title.split(" ")[0]
        expected = {"snapshot": Op.READ, "insert": Op.CREATE, "update": Op.UPDATE, "delete": Op.DELETE}.get(kind)
        if expected is not None:
            assert e.op is expected, title
        if kind == "op":
            assert e.op is Op(title.split(" ")[1]), title
        if kind == "tombstone":
            assert e.is_tombstone, title
        if kind == "heartbeat":
            assert e.is_heartbeat, title
        if kind == "transaction":
            assert e.is_transaction and e.tx_id, title
        if kind == "schema":
            assert e.is_schema_change, title
        if e.is_change:
            assert e.position > 0 and e.source_ts_ms and e.engine in ("postgresql", "mariadb")


def test_record_file_round_trip(tmp_path):
    records = load_records(FIXTURES / "pg_orders.json")
    out = tmp_path / "copy.json"
    dump_records(out, records)
    again = load_records(out)
    assert again == records
    assert isinstance(again[0], Record) and again[-1].value is None


@pytest.mark.parametrize("content", [b'{"a": 1}', b'[{"topic": "t", "partition": 0}]',
                                     b'[{"topic": 1, "partition": 0, "offset": 0}]'])
def test_record_file_errors(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="bad.json"):
        load_records(path)


def test_record_file_accepts_values_as_json_text(tmp_path):
    path = tmp_path / "text.json"
    value = '{"before":null,"after":{"id":1},"source":{"connector":"postgresql","lsn":5,"schema":"public",' \
            '"table":"orders"},"op":"c"}'
    path.write_bytes(orjson.dumps([{"topic": "orders.public.orders", "partition": 0, "offset": 0,
                                    "key": '{"id":1}', "value": value}]))
    (r,) = load_records(path)
    assert r.value == value.encode() and r.key == b'{"id":1}'
    assert parse_record(r).is_create


FIXTURE_FILES = sorted(FIXTURES.rglob("*.json"))
# Synthesised and captured (Debezium 2.7) events the decoder must read; the glob below must find them all,
# else an empty parameter set would only skip `test_every_fixture_file_decodes`.
EXPECTED_FIXTURES = {"pg_orders.json", "mariadb_warehouse.json", "captured_pg_orders.json",
                     "captured_mariadb_capwh.json", "captured/postgres_orders.json", "captured/mariadb_stock.json"}


def test_the_fixture_files_are_there():
    found = {p.relative_to(FIXTURES).as_posix() for p in FIXTURE_FILES}
    assert len(found) >= len(EXPECTED_FIXTURES), f"only {sorted(found)} under {FIXTURES}"
    assert EXPECTED_FIXTURES <= found, f"fixture files missing under {FIXTURES}: {sorted(EXPECTED_FIXTURES - found)}"


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_every_fixture_file_decodes(path):
    records = load_records(path)
    assert records, f"{path} holds no records"
    for r in records:
        parse_record(r)
