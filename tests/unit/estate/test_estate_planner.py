"""The planner: deterministic operations for a seed, a realistic mix, and coherent lifecycles (pure)."""

from __future__ import annotations

from collections import Counter

import pytest

from estate.domain import line_amount_cents
from estate.planner import DEFAULT_MIX, Flow, Planner, Pool, operations_digest, plan

pytestmark = pytest.mark.unit

ORDER_PIPELINE = [Flow.PLACE_ORDER, Flow.AUTHORISE_PAYMENT, Flow.CAPTURE_PAYMENT, Flow.RESERVE_STOCK,
                  Flow.PICK, Flow.PACK, Flow.SHIP]


def test_same_seed_same_operations():
    assert plan(7, 2000) == plan(7, 2000)
    assert operations_digest(plan(7, 2000)) == operations_digest(plan(7, 2000))


def test_different_seeds_differ():
    assert operations_digest(plan(7, 500)) != operations_digest(plan(8, 500))


def test_a_longer_plan_starts_with_the_shorter_one():
    assert plan(3, 1500)[:700] == plan(3, 700)


def test_the_mix_is_realistic():
    counts = Counter(op.flow for op in plan(1, 30_000))
    total = sum(counts.values())
    assert set(counts) == set(Flow)  # every flow happens
    share = {flow: n / total for flow, n in counts.items()}
    for flow in ORDER_PIPELINE:  # the order pipeline is most of the traffic, roughly evenly
        assert 0.09 < share[flow] < 0.17, (flow, share[flow])
    assert share[Flow.REGISTER_CUSTOMER] > share[Flow.VERIFY_CUSTOMER] > share[Flow.ERASE_CUSTOMER]
    assert share[Flow.REFUND_PAYMENT] < 0.02 and share[Flow.CANCEL_ORDER] < 0.02
    assert 0.005 < share[Flow.ERASE_CUSTOMER] * 10 < 0.05


def test_a_mix_without_a_flow_never_plans_it():
    mix = dict(DEFAULT_MIX, **{Flow.ERASE_CUSTOMER: 0, Flow.CANCEL_ORDER: 0})
    planner = Planner(5, mix=mix)
    flows = {planner.next().flow for _ in range(5000)}
    assert Flow.ERASE_CUSTOMER not in flows and Flow.CANCEL_ORDER not in flows


def test_unknown_flows_in_a_mix_are_rejected():
    with pytest.raises(ValueError, match="unknown flows"):
        Planner(1, mix={"teleport": 1.0})


def test_each_order_follows_the_pipeline_and_customers_exist_before_they_order():
    registered, verified, erased = set(), set(), set()
    stage: dict[int, int] = {}
    totals: dict[int, int] = {}
    refunded: Counter = Counter()
    for op in plan(2, 20_000):
        if op.flow == Flow.REGISTER_CUSTOMER:
            registered.add(op.args[0])
        elif op.flow == Flow.VERIFY_CUSTOMER:
            assert op.args[0] in registered and op.args[0] not in verified
            verified.add(op.args[0])
        elif op.flow == Flow.ERASE_CUSTOMER:
            assert op.args[0] in registered and op.args[0] not in erased
            erased.add(op.args[0])
        elif op.flow == Flow.PLACE_ORDER:
            ref, customer, lines = op.args[:3]
            assert customer in verified and customer not in erased
            assert len({line.sku for line in lines}) == len(lines)  # distinct SKUs per order
            stage[ref] = 0
            totals[ref] = sum(line_amount_cents(x.qty, x.unit_price_cents, x.discount_cents) for x in lines)
        elif op.flow in ORDER_PIPELINE:
            ref = op.args[0]
            expected = ORDER_PIPELINE.index(op.flow)
            if op.flow == Flow.AUTHORISE_PAYMENT:
                assert op.args[1] == totals[ref]  # the order's total is what gets authorised
                assert stage[ref] == 0
                if not op.args[4]:  # a declined card leaves the order waiting for another attempt
                    stage[ref] = 1
                continue
            assert stage[ref] == expected - 1, (op, stage[ref])
            stage[ref] = expected
        elif op.flow == Flow.CANCEL_ORDER:
            assert stage[op.args[0]] < ORDER_PIPELINE.index(Flow.SHIP)  # never after shipping
            stage[op.args[0]] = -1
        elif op.flow == Flow.REFUND_PAYMENT:
            ref, amount, full = op.args
            assert stage[ref] == ORDER_PIPELINE.index(Flow.SHIP)
            refunded[ref] += amount
            assert 0 < refunded[ref] <= totals[ref]
            assert full == (refunded[ref] == totals[ref])


def test_stock_adjustments_are_mostly_deliveries_with_some_clear_outs():
    deltas = [op.args[2] for op in plan(9, 40_000) if op.flow == Flow.ADJUST_STOCK]
    assert sum(d > 0 for d in deltas) > 0.7 * len(deltas)
    assert any(d <= -1_000_000 for d in deltas)  # bins get emptied (and retired: a hard delete)


def test_pool_takes_randomly_and_respects_its_cap():
    import random

    pool = Pool(cap=3)
    assert [pool.add(i) for i in range(4)] == [None, None, None, 0]
    rng = random.Random(1)
    taken = {pool.take(rng) for _ in range(3)}
    assert taken == {1, 2, 3} and len(pool) == 0
