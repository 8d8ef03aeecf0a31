"""Every kind of bad input from issue 9 in one batch, on both backends: each lands in the dead
letters with a readable reason (counts asserted), the good events of the batch apply, and
duplicates / older events are no-ops, not dead letters."""

from __future__ import annotations

import json

import pytest

from pipelines.apply.dead_letters import list_dead_letters
from pipelines.apply.runner import load_parts
from pipelines.cdc.events import Record
from pipelines.config.load import load_estate
from tests.integration.apply.test_pipeline_dead_letters import captured_records, first_create
from tests.support.estate import bundled_estate, write_estate

pytestmark = pytest.mark.integration

TOPIC = "orders.public.orders"


def envelope(**changes) -> dict:
    base = json.loads(first_create(captured_records()).value)
    after = dict(base["after"])
    after.update(changes.pop("after", {}))
    for k in changes.pop("drop", []):
        after.pop(k)
    base["after"] = after
    base.update(changes)
    return base


def rec(offset: int, value, key: bytes | None = b'{"id": 900}', topic: str = TOPIC) -> Record:
    if isinstance(value, dict):
        value = json.dumps(value).encode()
    return Record(topic, 0, offset, key, value)


def test_each_kind_of_bad_input_is_a_dead_letter_and_the_stream_goes_on(backend):
    estate = bundled_estate()
    parts = load_parts(estate)
    backend.ensure_schema(list(parts.contracts.values()))
    limit = estate.pipeline.max_record_bytes
    src = envelope()["source"]
    good = envelope(after={"id": 900, "state_code": 20}, source={**src, "lsn": 50_000_000})
    older = envelope(after={"id": 900, "state_code": 10}, source={**src, "lsn": 49_000_000})
    bad = {
        1: b'{"before": null, "after": {"id": 1',                                        # malformed JSON
        2: {"hello": "world"},                                                            # not an envelope
        3: envelope(op="x", after={"id": 903}),                                           # unknown op
        4: envelope(drop=["id"]),                                                         # missing primary key
        5: envelope(after={"id": None}),                                                  # null primary key
        6: envelope(after={"id": 906, "total_cents": "lots"}),                            # wrong type
        7: envelope(after={"id": 907, "currency_iso": "euro"}),                           # too long for varchar(3)
        9: b'{"op": "c", "after": {"id": 909, "x": "' + b"x" * limit + b'"}}',           # oversized
    }
    records = [rec(0, good)] + [rec(o, v, key=f'{{"id": {900 + o}}}'.encode()) for o, v in bad.items()]
    records.append(rec(8, good, topic="orders.public.order_notes"))                     # no projection
    records += [rec(10, good), rec(11, older)]                                           # duplicate, older
    result = backend.apply("g", parts.plan(records))

    dead = list_dead_letters(backend, limit=100)
    by_offset: dict[int, list] = {}
    for d in dead:
        by_offset.setdefault(d.offset, []).append(d)
    # every bad kind is there (one record can fail for both orders_v1 and orders_v2)
    assert sorted(by_offset) == [1, 2, 3, 4, 5, 6, 7, 8, 9], {o: [d.reason for d in ds] for o, ds in by_offset.items()}
    for ds in by_offset.values():
        for d in ds:
            assert d.reason and len(d.reason.splitlines()) == 1 and d.topic.startswith("orders.")
    reasons = {o: " ".join(d.reason for d in ds).lower() for o, ds in by_offset.items()}
    assert "json" in reasons[1]
    assert "op" in reasons[3]
    assert "id" in reasons[4] and "id" in reasons[5]
    assert "total_cents" in reasons[6]
    assert "currency" in reasons[7]
    assert "order_notes" in reasons[8]
    assert "exceeds" in reasons[9]
    assert result.dead_letters == len(dead)
    # the good event applied once; its duplicate and the older event changed nothing
    rows = backend.query('SELECT status, "_source_position" FROM reporting.orders_v1 WHERE order_id = 900')
    assert rows == [("PAID", 50_000_000)]
    assert backend.stored_offsets("g")[(TOPIC, 0)] == 12


def test_the_size_limit_is_the_estates_pipeline_max_record_bytes(backend, tmp_path):
    """Oversized means larger than the estate file's pipeline.max_record_bytes: a record of exactly the
    limit applies, one byte more is a dead letter naming the setting; the bundled estate's (default)
    limit lets that same record through."""
    src = envelope()["source"]
    at_limit = json.dumps(envelope(after={"id": 910, "state_code": 20}, source={**src, "lsn": 50_000_000}))
    over = json.dumps(envelope(after={"id": 911, "state_code": 20}, source={**src, "lsn": 50_000_001})) + " "
    limit = len(at_limit.encode())
    assert len(over.encode()) == limit + 1
    estate = load_estate(write_estate(tmp_path / "estate", **{"pipeline.max_record_bytes": limit}), environ={})
    assert estate.pipeline.max_record_bytes == limit != bundled_estate().pipeline.max_record_bytes
    parts = load_parts(estate)
    backend.ensure_schema(list(parts.contracts.values()))
    records = [rec(0, at_limit.encode(), key=b'{"id": 910}'), rec(1, over.encode(), key=b'{"id": 911}')]
    result = backend.apply("g", parts.plan(records))

    dead = list_dead_letters(backend, limit=10)
    assert [(d.offset, d.stage) for d in dead] == [(1, "decode")]
    assert f"{limit + 1:,} bytes exceeds the {limit:,}-byte limit (pipeline.max_record_bytes)" in dead[0].reason
    assert result.dead_letters == 1
    assert backend.query("SELECT order_id FROM reporting.orders_v1 ORDER BY 1") == [(910,)]
    assert backend.stored_offsets("g")[(TOPIC, 0)] == 2
    assert not load_parts(bundled_estate()).plan(records).dead_letters
