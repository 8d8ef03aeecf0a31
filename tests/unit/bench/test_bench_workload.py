"""The benchmark workload: its mix, determinism, the schema-enabled copy and the row comparison."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import orjson
import pytest

from pipelines.bench import compare
from pipelines.bench.workload import FinalState, orders_changes, with_schemas

pytestmark = pytest.mark.unit


def _ops(events):
    return Counter("tombstone" if v is None else orjson.loads(v)["op"] for _k, v in events)


def test_mix_is_20_70_10_with_tombstones_after_deletes():
    events = list(orders_changes(20_000, 4_000, seed=3))
    assert len(events) == 20_000
    ops = _ops(events)
    assert ops["d"] == ops["tombstone"]
    rolls = ops["c"] + ops["u"] + ops["d"]
    assert ops["c"] / rolls == pytest.approx(0.20, abs=0.02)
    assert ops["u"] / rolls == pytest.approx(0.70, abs=0.02)
    assert ops["d"] / rolls == pytest.approx(0.10, abs=0.02)


def test_deterministic_per_seed_and_keys_bounded():
    a = list(orders_changes(3_000, 500, seed=9))
    assert a == list(orders_changes(3_000, 500, seed=9))
    assert a != list(orders_changes(3_000, 500, seed=10))
    ids = {orjson.loads(k)["id"] for k, _v in a}
    assert max(ids) <= 500


def test_updates_and_deletes_touch_only_live_keys_and_lsns_increase():
    live, last_lsn = set(), 0
    for _k, v in orders_changes(5_000, 800, seed=1):
        if v is None:
            continue
        env = orjson.loads(v)
        assert env["source"]["lsn"] > last_lsn
        last_lsn = env["source"]["lsn"]
        if env["op"] == "c":
            live.add(env["after"]["id"])
        elif env["op"] == "u":
            assert env["after"]["id"] in live
        else:
            assert env["before"]["id"] in live
            live.remove(env["before"]["id"])


def test_schema_copy_wraps_the_same_payload():
    events = list(orders_changes(200, 50, seed=2))
    wrapped = list(with_schemas(iter(events), "x.public.orders"))
    for (k, v), (wk, wv) in zip(events, wrapped, strict=True):
        key = orjson.loads(wk)
        assert key["payload"] == orjson.loads(k)
        assert key["schema"]["name"] == "x.public.orders.Key"
        if v is None:
            assert wv is None
        else:
            value = orjson.loads(wv)
            assert value["payload"] == orjson.loads(v)
            assert value["schema"]["name"].endswith(".Envelope")
            assert [f["field"] for f in value["schema"]["fields"]] == ["before", "after", "source", "op", "ts_ms"]


def test_final_state_and_canonical_rows_match_both_shapes():
    state = FinalState()
    for k, v in orders_changes(2_000, 300, seed=4):
        state.feed(k, v)
    assert state.events == 2_000
    n, cents = state.totals()
    assert n == len(state.rows) and cents == sum(r["total_cents"] for r in state.rows.values())
    expected = compare.expected_rows(state.rows)
    oid, row = next(iter(state.rows.items()))
    canon = expected[oid]
    # the same order as our contract table would hold it
    v2 = compare.from_orders_v2(oid, row["customer_ref"], compare.V2_STATUS[row["state_code"]],
                                Decimal(row["total_cents"]) / 100, row["currency_iso"].upper(), row["created_ts"],
                                row["modified_ts"], "web")
    assert v2 == canon
    other = dict(expected)
    other[oid] = canon[:3] + (canon[3] + 1,) + canon[4:]
    d = compare.diff(expected, other)
    assert not d["identical"] and d["different"] == 1
    assert compare.diff(expected, dict(expected))["identical"]
