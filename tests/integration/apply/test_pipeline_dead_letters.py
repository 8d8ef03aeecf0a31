"""Planner + backend on captured Debezium events: poison records land in dead letters with their
reason and position, the rest of the batch applies, offsets advance past everything, and replay
after a fix applies what now succeeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.apply.dead_letters import list_dead_letters, replay
from pipelines.apply.runner import load_parts
from pipelines.cdc.events import Record
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration

CAPTURED = Path(__file__).resolve().parents[2] / "fixtures" / "events" / "captured" / "postgres_orders.json"


def captured_records() -> list[Record]:
    return [Record(r["topic"], r["partition"], r["offset"], r["key"].encode() if r["key"] else None,
                   r["value"].encode() if r["value"] else None) for r in json.loads(CAPTURED.read_text())]


def first_create(records: list[Record]) -> Record:
    return next(r for r in records if r.topic == "orders.public.orders" and r.value and b'"op":"c"' in r.value)


def test_poison_events_go_to_dead_letters_and_stream_goes_on(backend):
    parts = load_parts(bundled_estate())
    backend.ensure_schema(list(parts.contracts.values()))
    records = captured_records()
    poison = [
        Record("orders.public.orders", 0, 100, b'{"id": 77}', b'{"before": null, "after": {"id": 7'),  # malformed
        Record("orders.public.orders", 0, 101, b'{"id": 78}', b'{"hello": "world"}'),  # not an envelope
        Record("orders.public.refund_notes", 0, 5, b'{"id": 1}', first_create(records).value),  # no projection
    ]
    batch = parts.plan(records + poison)
    result = backend.apply("g", batch)
    assert result.dead_letters == 3
    assert backend.stored_offsets("g")[("orders.public.orders", 0)] == 102
    assert backend.stored_offsets("g")[("orders.public.refund_notes", 0)] == 6
    views = {d.offset: d for d in list_dead_letters(backend)}
    assert set(views) == {100, 101, 5}
    assert views[100].stage == "decode" and views[100].topic == "orders.public.orders"
    assert views[5].stage == "route" and "refund_notes" in views[5].reason
    # order 1 was read by the snapshot and deleted in the same batch: it is kept soft-deleted, with its
    # last values, exactly as if the two events had come in separate batches
    assert backend.query("SELECT count(*) FROM reporting.orders_v1 WHERE _deleted_at IS NULL")[0][0] == 2
    assert backend.query("SELECT customer_id, _op FROM reporting.orders_v1 WHERE _deleted_at IS NOT NULL") == [
        (7, "d")]
    # nothing was fixed: replay leaves all three pending, with retries counted
    res = replay(backend, parts, "g")
    assert (res.attempted, res.replayed, res.still_failing) == (3, 0, 3)
    # per topic, so `reporting dlq replay` can say which source table a resnapshot would heal
    assert res.failing_by_topic == {"orders.public.orders": 2, "orders.public.refund_notes": 1}
    assert {d.retries for d in list_dead_letters(backend)} == {1}


def test_replay_applies_once_the_cause_is_fixed(backend):
    parts = load_parts(bundled_estate())
    backend.ensure_schema(list(parts.contracts.values()))
    good = first_create(captured_records())
    # the event first arrives on a topic nobody projects (think: a projection not deployed yet)
    stray = Record("orders.public.orders_staging", 0, 0, good.key, good.value)
    backend.apply("g", parts.plan([stray]))
    assert len(list_dead_letters(backend)) == 1
    # "fix": the operator re-points the dead letter to the projected topic, then replays
    backend.execute("UPDATE _pipeline.dead_letters SET topic = 'orders.public.orders'")
    res = replay(backend, parts, "g")
    assert (res.replayed, res.still_failing) == (1, 0)
    assert backend.query("SELECT count(*) FROM reporting.orders_v1")[0][0] == 1
    assert list_dead_letters(backend) == []


def test_redelivered_poison_event_is_not_duplicated(backend):
    parts = load_parts(bundled_estate())
    backend.ensure_schema(list(parts.contracts.values()))
    poison = Record("orders.public.orders", 0, 7, b'{"id": 1}', b"not json")
    backend.apply("g", parts.plan([poison]))
    backend.apply("g", parts.plan([poison]))
    assert backend.query("SELECT count(*) FROM _pipeline.dead_letters")[0][0] == 1


def test_soft_deleted_rows_do_not_depend_on_batch_boundaries(backend, tmp_path):
    """create → update → delete of one key, applied as one batch or as three, leaves the same row."""
    from pipelines.bench.workload import orders_changes

    parts = load_parts(bundled_estate())
    # DuckLake commits cost ~0.1-1 s each (docs/ducklake.md): 30 batches there instead of 430 (deletes start
    # once 100 keys live)
    n, keys, step = (630, 120, 21) if backend.keyless else (3000, 300, 7)
    events = [Record("orders.public.orders", 0, i, k, v) for i, (k, v) in enumerate(orders_changes(n, keys, 9))]
    q = ('SELECT order_id, order_status, total_amount, "_source_position", "_op", "_deleted_at" IS NULL '
         "FROM reporting.orders_v2 ORDER BY order_id")
    backend.ensure_schema(list(parts.contracts.values()))
    backend.apply("one", parts.plan(events))
    one_batch = backend.query(q)
    backend.execute("DELETE FROM reporting.orders_v2")
    backend.execute('DELETE FROM _pipeline."orders_v2__deleted"')
    for i in range(0, len(events), step):
        backend.apply("many", parts.plan(events[i:i + step]))
    assert backend.query(q) == one_batch
    assert any(not live for *_x, live in one_batch)  # the workload does delete rows
