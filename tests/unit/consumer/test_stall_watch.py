"""A consumer that stopped making progress is noticed (kafka/stall.py) and opened anew by the worker,
after what it had returned is applied. Clocks are passed in: no timing is asserted."""

from __future__ import annotations

import pytest

from pipelines.apply.worker import Worker
from pipelines.cdc.events import Record
from pipelines.kafka.stall import StallWatch
from tests.unit.apply.test_worker_linger import FakeBackend, plan

pytestmark = pytest.mark.unit


def test_a_rebalance_that_does_not_finish_is_a_stall_after_the_limit():
    w = StallWatch(limit_s=120)
    assert w.check(1000, group_stable=False, lag=0, records_at=990) is None
    assert w.rebalancing_for(1060) == 60
    assert w.check(1119, group_stable=False, lag=0, records_at=990) is None
    reason = w.check(1120, group_stable=False, lag=0, records_at=990)
    assert reason == "the consumer group's rebalance has not finished after 120s"


def test_a_rebalance_that_finishes_starts_the_count_again():
    w = StallWatch(limit_s=120)
    w.check(1000, group_stable=False, lag=0, records_at=0)
    assert w.check(1100, group_stable=True, lag=0, records_at=0) is None
    assert w.rebalancing_for(1100) is None
    assert w.check(1150, group_stable=False, lag=0, records_at=0) is None
    assert w.check(1269, group_stable=False, lag=0, records_at=0) is None  # 119 s since it began again


def test_records_waiting_with_none_fetched_is_a_stall_but_an_idle_stream_is_not():
    w = StallWatch(limit_s=120)
    for t in range(1000, 2000, 5):  # idle: nothing waits
        assert w.check(t, group_stable=True, lag=0, records_at=900) is None
    assert w.check(2000, group_stable=True, lag=40, records_at=900) is None  # waiting counts from now
    assert w.check(2100, group_stable=True, lag=40, records_at=2090) is None  # records still arrive
    assert w.check(2119, group_stable=True, lag=40, records_at=2000) is None
    assert w.check(2120, group_stable=True, lag=6_800, records_at=2000) == (
        "6,800 records wait on the assigned partitions but none was fetched for 120s")
    w.reset()
    assert w.check(2125, group_stable=True, lag=6_800, records_at=2000) is None


class StuckThenFine:
    """Returns one record, then reports an unfinished rebalance until it is restarted."""

    def __init__(self, worker_ref: list) -> None:
        self.worker_ref = worker_ref
        self.restarts = 0
        self.applied_before_restart: list[int] | None = None
        self.quiesce = None
        self.polls = 0

    def set_quiesce(self, wait):
        self.quiesce = wait

    def poll(self, timeout_ms: int = 0):
        self.polls += 1
        if self.polls == 1:
            return [Record("t", 0, 0, b"k", b"v")]
        if self.restarts and self.polls > 5:
            self.worker_ref[0].stop()
        return [Record("t", 0, 1, b"k", b"v")] if self.restarts and self.polls == 4 else []

    def lag(self):
        return {}

    def assignment(self):
        return set()

    def group_stable(self):
        return self.restarts > 0

    def restart(self):
        self.applied_before_restart = [o for b in self.worker_ref[1].batches for o in b]
        self.restarts += 1

    def commit_hint(self, offsets):
        pass


def test_the_worker_applies_what_it_holds_then_opens_a_new_consumer_and_goes_on():
    ref: list = [None, FakeBackend()]
    consumer = StuckThenFine(ref)
    lines: list[str] = []
    from pipelines.metrics import PipelineMetrics

    metrics = PipelineMetrics("g", "g-0")
    w = Worker(ref[1], consumer, plan, "g", say=lines.append, status_every=0.0, stall_restart_s=0.0,
               linger_s=60.0, metrics=metrics)  # lingering: the first record is still pending when the stall is noticed
    ref[0] = w
    stats = w.run(install_signals=False)
    assert consumer.restarts == 1 and stats.consumer_restarts == 1
    assert consumer.applied_before_restart == [0], "what the stuck consumer returned is applied first"
    assert [o for b in ref[1].batches for o in b] == [0, 1], "the new consumer's records are applied too"
    assert any("consumer group rebalancing for" in ln for ln in lines)
    assert metrics.registry.get_sample_value("reporting_consumer_restarts_total", {"reason": "rebalance"}) == 1
    assert any(ln.startswith("restarting the Kafka consumer: the consumer group's rebalance has not finished")
               for ln in lines)


def test_the_bound_is_an_estate_key_with_the_stall_modules_default():
    from pydantic import ValidationError

    from pipelines.config.model import STALL_RESTART_S_DEFAULT, Pipeline
    from pipelines.kafka.stall import STALL_RESTART_S

    assert Pipeline().stall_restart_s == STALL_RESTART_S_DEFAULT == STALL_RESTART_S
    assert Pipeline(stall_restart_s=300).stall_restart_s == 300
    with pytest.raises(ValidationError, match="stall_restart_s"):
        Pipeline(stall_restart_s=1)
    worker = Worker(FakeBackend(), consumer=None, planner=plan, group="g", stall_restart_s=300)
    assert worker.stall.limit_s == 300
