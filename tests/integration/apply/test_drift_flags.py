"""Source-side drift is flagged per source table in `reporting status`: dead letters of stage 'drift'
(a declared column missing, a value of another kind than its declared type), with the first position."""

from __future__ import annotations

import json

import pytest

from pipelines.apply.runner import load_parts
from pipelines.apply.status import drift_flags
from pipelines.cdc.events import Record
from tests.integration.apply.test_pipeline_dead_letters import captured_records, first_create
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration

T = "orders.public.orders"


def _variant(value: bytes, change) -> bytes:
    env = json.loads(value)
    change(env["after"])
    return json.dumps(env).encode()


def test_missing_column_and_changed_type_are_drift_flagged_per_source_table(backend):
    parts = load_parts(bundled_estate())
    backend.ensure_schema(list(parts.contracts.values()))
    create = first_create(captured_records())
    def key(i: int) -> bytes:
        return json.dumps({"id": i}, separators=(",", ":")).encode()

    renamed = _variant(create.value, lambda a: a.update(id=9001, amount_cents=a.pop("total_cents")))  # renamed
    retyped = _variant(create.value, lambda a: a.update(id=9002, total_cents=str(a["total_cents"])))  # now text
    batch = parts.plan([Record(T, 0, 200, key(9001), renamed), Record(T, 0, 201, key(9002), retyped)])
    assert {d.stage for d in batch.dead_letters} == {"drift"}
    backend.apply("g", batch)

    (flag,) = drift_flags(backend, parts.source_tables)
    assert (flag.source_table, flag.topic, flag.first_position) == ("public.orders", T, f"{T}[0]@200")
    assert flag.dead_letters == len(batch.dead_letters) >= 2
    assert "total_cents" in flag.reason and "missing" in flag.reason


def test_no_drift_no_flag(backend):
    parts = load_parts(bundled_estate())
    backend.ensure_schema(list(parts.contracts.values()))
    backend.apply("g", parts.plan(captured_records()[:5]))
    assert drift_flags(backend, parts.source_tables) == []
