"""Issue 16 point 2: the Kafka key must name the row the value holds.

A record whose key says another row than its value (`after`, or `before` for a delete) is a dead letter
naming topic[partition]@offset, the key columns and both values, and is applied under neither key.
Built on events captured from the real stack (tests/fixtures/events/captured/postgres_orders.json).
"""

from __future__ import annotations

import json

import orjson
import pytest
from cdc_helpers import FIXTURES

from pipelines.cdc import plan as plan_module
from pipelines.cdc.events import Record, parse_record
from pipelines.cdc.plan import Planner
from pipelines.cdc.recordfile import load_records

pytestmark = pytest.mark.unit

T = "orders.public.orders"
LINES = "orders.public.order_lines"
CAPTURED = FIXTURES / "captured" / "postgres_orders.json"


@pytest.fixture()
def planner(orders_projection, contracts):
    return Planner(orders_projection, contracts)


def captured() -> list[dict]:
    return json.loads(CAPTURED.read_text())


def captured_value(topic: str, offset: int) -> dict:
    [r] = [r for r in captured() if r["topic"] == topic and r["offset"] == offset]
    return json.loads(r["value"])


def record(value: dict | None, offset: int, key: bytes | None, topic: str = T) -> Record:
    return Record(topic, 0, offset, key, None if value is None else orjson.dumps(value))


def create_of(order_id: int, lsn: int) -> dict:
    """The captured create of order 2 (offset 1), as order `order_id` at `lsn`."""
    value = captured_value(T, 1)
    value["after"]["id"] = order_id
    value["source"]["lsn"] = lsn
    return value


def delete_of(order_id: int, lsn: int) -> dict:
    """The captured delete of order 1 (offset 3; `before` holds placeholders except the key)."""
    value = captured_value(T, 3)
    assert value["op"] == "d" and value["after"] is None
    value["before"]["id"] = order_id
    value["source"]["lsn"] = lsn
    return value


def upserted(plan, table="orders_v1") -> list:
    tp = plan.tables.get(table)
    return [] if tp is None else sorted(r[0] for r in tp.upserts)


def deleted(plan, table="orders_v1") -> list:
    tp = plan.tables.get(table)
    return [] if tp is None else sorted(k[0] for k, _, _ in tp.deletes)


def test_the_issue_case_a_delete_keyed_900099_with_before_id_900006_deletes_nothing(planner):
    records = [
        record(create_of(900006, 30_000_000), 10, b'{"id":900006}'),
        record(delete_of(900006, 30_000_100), 11, b'{"id":900099}'),   # key and before.id disagree
        record(None, 12, b'{"id":900099}'),                           # its tombstone: the key only, no row
    ]
    plan = planner.plan_records(records)
    # 900006 keeps its create (the bad delete did not supersede it), nothing is deleted under either key
    assert upserted(plan) == upserted(plan, "orders_v2") == [900006]
    assert deleted(plan) == deleted(plan, "orders_v2") == []
    [dl] = plan.dead_letters
    assert (dl.topic, dl.partition, dl.offset, dl.stage, dl.target) == (T, 0, 11, "decode", None)
    assert dl.key == b'{"id":900099}' and dl.value == records[1].value  # raw bytes kept for replay
    assert "orders.public.orders[0]@11" in dl.reason
    assert "key columns id" in dl.reason
    assert "the key says 900099" in dl.reason and "the value's 'before' row says 900006" in dl.reason
    assert "\n" not in dl.reason
    assert plan.next_offsets() == {(T, 0): 13}  # every record's offset still counts
    assert plan.skipped == 1  # the tombstone


def test_a_mismatched_delete_alone_deletes_neither_key(planner):
    plan = planner.plan_records([record(delete_of(900006, 30_000_100), 0, b'{"id":900099}')])
    assert deleted(plan) == [] and upserted(plan) == []
    [dl] = plan.dead_letters
    assert "900099" in dl.reason and "900006" in dl.reason


def test_a_mismatched_upsert_is_applied_under_neither_key(planner):
    plan = planner.plan_records([record(create_of(6, 30_000_000), 0, b'{"id":5}')])
    assert upserted(plan) == [] and upserted(plan, "orders_v2") == []
    [dl] = plan.dead_letters
    assert dl.stage == "decode" and dl.target is None
    assert "the key says 5, the value's 'after' row says 6" in dl.reason


def test_a_mismatched_record_does_not_supersede_the_keys_good_changes(planner):
    """Neither the key's row (5) nor the value's row (6) loses its good in-batch change."""
    plan = planner.plan_records([
        record(create_of(5, 30_000_000), 0, b'{"id":5}'),
        record(create_of(6, 30_000_010), 1, b'{"id":6}'),
        record(delete_of(6, 30_000_020), 2, b'{"id":5}'),
    ])
    assert upserted(plan) == [5, 6] and deleted(plan) == []
    assert [d.offset for d in plan.dead_letters] == [2]


def test_composite_keys_name_every_key_column_and_both_values(planner):
    value = captured_value(LINES, 0)  # after: order_id 2, line_no 1
    plan = planner.plan_records([record(value, 0, b'{"order_id":2,"line_no":9}', topic=LINES)])
    assert upserted(plan, "order_lines_v1") == []
    [dl] = plan.dead_letters
    assert f"{LINES}[0]@0" in dl.reason and "key columns order_id, line_no" in dl.reason
    assert "the key says (2, 9), the value's 'after' row says (2, 1)" in dl.reason


@pytest.mark.parametrize("key", [
    b'{"id": 2}',                                                                   # other spacing
    b'{"schema":{"type":"struct","fields":[]},"payload":{"id":2}}',                # schemas.enable=true
    b'{"id":2,"tenant":"x"}',                                                       # extra key columns
    None,                                                                           # no key: nothing to compare
], ids=["spaced", "schema-wrapper", "extra-column", "no-key"])
def test_keys_written_another_way_still_match(planner, key):
    plan = planner.plan_records([record(create_of(2, 30_000_000), 0, key)])
    assert plan.dead_letters == [] and upserted(plan) == [2]


def test_composite_key_in_another_column_order_matches(planner):
    value = captured_value(LINES, 0)
    plan = planner.plan_records([record(value, 0, b'{"line_no":1,"order_id":2}', topic=LINES)])
    assert plan.dead_letters == [] and upserted(plan, "order_lines_v1") == [2]


def test_a_string_key_value_is_not_equal_to_a_number(planner):
    plan = planner.plan_records([record(create_of(2, 30_000_000), 0, b'{"id":"2"}')])
    [dl] = plan.dead_letters
    assert 'the key says "2", the value\'s \'after\' row says 2' in dl.reason


@pytest.mark.parametrize(("key", "says"), [
    (b'{"order":2}', 'the key says {"order":2} (no column id)'),
    (b"[2]", "the key says [2] (a JSON array, not an object)"),
    (b'{"id":2', "the key says nothing readable (not valid JSON"),
])
def test_keys_that_cannot_name_the_row_are_dead_letters(planner, key, says):
    plan = planner.plan_records([record(create_of(2, 30_000_000), 0, key)])
    assert upserted(plan) == []
    [dl] = plan.dead_letters
    assert dl.stage == "decode" and says in dl.reason and "value's 'after' row says 2" in dl.reason


def test_the_events_api_checks_the_key_too(planner):
    bad = record(delete_of(900006, 30_000_100), 3, b'{"id":900099}')
    plan = planner.plan([parse_record(bad)])
    assert deleted(plan) == []
    [dl] = plan.dead_letters
    assert "orders.public.orders[0]@3" in dl.reason


def test_tombstones_keep_using_their_key(planner):
    plan = planner.plan_records([record(None, 0, b'{"id":900099}')])
    assert plan.dead_letters == [] and plan.tables == {} and plan.skipped == 1


def test_captured_records_take_the_byte_equal_path(monkeypatch, orders_projection, contracts):
    """Debezium's compact key JSON is byte-equal to the key rendered from the row: no key is parsed."""
    calls = []
    real = plan_module._check_kafka_key
    monkeypatch.setattr(plan_module, "_check_kafka_key", lambda *a: calls.append(a) or real(*a))
    planner = Planner(orders_projection, contracts)
    plan = planner.plan_records(load_records(CAPTURED))
    assert plan.dead_letters == [] and plan.changes > 0
    assert calls == []
    # ... and a mismatch does reach the slow path
    planner.plan_records([record(create_of(2, 30_000_000), 0, b'{"id":5}')])
    assert len(calls) == 1


def test_replaying_the_dead_letter_fails_again_with_the_same_reason(planner):
    bad = record(delete_of(900006, 30_000_100), 11, b'{"id":900099}')
    first = planner.plan_records([bad]).dead_letters
    again = planner.plan_records([Record(bad.topic, bad.partition, bad.offset, first[0].key, first[0].value)])
    assert [d.reason for d in again.dead_letters] == [first[0].reason]
