"""Issue 16 points 2 and 7 through the apply step, on both backends, from captured Debezium events:

- a delete whose Kafka key (900099) differs from its before.id (900006) deletes neither row; it is a
  dead letter naming topic[partition]@offset, the key column and both values; offsets move past it;
- reasons say what was written: 10**30 as written and out of range; 'after' as a string.
"""

from __future__ import annotations

import json

import pytest

from pipelines.apply.dead_letters import list_dead_letters
from pipelines.apply.runner import load_parts
from pipelines.cdc.events import Record
from tests.integration.apply.test_pipeline_dead_letters import captured_records
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration

T = "orders.public.orders"


@pytest.fixture
def parts(backend):
    parts = load_parts(bundled_estate())
    backend.ensure_schema(list(parts.contracts.values()))
    return parts


def captured(op: str) -> dict:
    """The first captured orders change of `op` (the delete's before holds placeholders except the key)."""
    return next(json.loads(r.value) for r in captured_records()
                if r.topic == T and r.value and f'"op":"{op}"'.encode() in r.value)


def create_of(order_id: int, lsn: int) -> bytes:
    value = captured("c")
    value["after"]["id"] = order_id
    value["source"]["lsn"] = lsn
    return json.dumps(value, separators=(",", ":")).encode()


def delete_of(order_id: int, lsn: int) -> bytes:
    value = captured("d")
    value["before"]["id"] = order_id
    value["source"]["lsn"] = lsn
    return json.dumps(value, separators=(",", ":")).encode()


def live_orders(backend) -> list:
    return backend.query('SELECT order_id FROM reporting.orders_v1 WHERE "_deleted_at" IS NULL ORDER BY 1')


def test_a_delete_keyed_900099_with_before_id_900006_deletes_nothing(backend, parts):
    backend.apply("g", parts.plan([Record(T, 0, 0, b'{"id":900006}', create_of(900006, 30_000_000))]))
    assert live_orders(backend) == [(900006,)]

    result = backend.apply("g", parts.plan([
        Record(T, 0, 1, b'{"id":900099}', delete_of(900006, 30_000_100)),
        Record(T, 0, 2, b'{"id":900099}', None),  # its tombstone
    ]))
    assert result.dead_letters == 1
    assert live_orders(backend) == [(900006,)]
    assert backend.query('SELECT count(*) FROM reporting.orders_v2 WHERE "_deleted_at" IS NOT NULL') == [(0,)]
    assert backend.stored_offsets("g")[(T, 0)] == 3
    [dl] = list_dead_letters(backend)
    assert (dl.topic, dl.partition, dl.offset, dl.stage, dl.target_table) == (T, 0, 1, "decode", None)
    assert "orders.public.orders[0]@1" in dl.reason and "key columns id" in dl.reason
    assert "the key says 900099, the value's 'before' row says 900006" in dl.reason


def test_the_good_records_of_the_batch_still_apply(backend, parts):
    backend.apply("g", parts.plan([
        Record(T, 0, 0, b'{"id":900006}', create_of(900006, 30_000_000)),
        Record(T, 0, 1, b'{"id":900099}', delete_of(900006, 30_000_100)),
        Record(T, 0, 2, b'{"id":900007}', create_of(900007, 30_000_200)),
    ]))
    assert live_orders(backend) == [(900006,), (900007,)]
    assert [d.offset for d in list_dead_letters(backend)] == [1]


def test_reasons_in_the_stored_dead_letters(backend, parts):
    big = create_of(900008, 30_000_000).replace(b'"total_cents":4500', b'"total_cents":' + str(10**30).encode())
    assert big != create_of(900008, 30_000_000)
    as_string = json.loads(create_of(900009, 30_000_100))
    as_string["after"] = json.dumps(as_string["after"])
    backend.apply("g", parts.plan([
        Record(T, 0, 0, b'{"id":900008}', big),
        Record(T, 0, 1, b'{"id":900009}', json.dumps(as_string).encode()),
    ]))
    reasons = {(d.offset, d.target_table): d.reason for d in list_dead_letters(backend)}
    assert reasons == {
        (0, "orders_v1"): "column public.orders.total_cents: 1000000000000000000000000000000 is out of range for bigint",
        (0, "orders_v2"): "column public.orders.total_cents: 1000000000000000000000000000000 is out of range for bigint",
        (1, None): "'after' is a string, expected an object",
    }
