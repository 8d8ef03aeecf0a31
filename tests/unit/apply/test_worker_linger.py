"""Streaming with `linger_s`: the records of several polls are cut into one batch at most once per
interval, or as soon as `max_records` wait; nothing is held across a rebalance or a stop, and
`until_caught_up` runs never linger. A fake clock advances with every poll: no timing is asserted.
"""

from __future__ import annotations

import pytest

from pipelines.apply.backend import ApplyBatch, ApplyResult
from pipelines.apply.worker import RunStats, Worker
from pipelines.cdc.events import Record

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeConsumer:
    """Each poll returns the next list of records (then nothing) and advances the clock by `step` s."""

    def __init__(self, polls: list[list[Record]], clock: Clock, step: float = 0.1, on_poll=None) -> None:
        self.polls = list(polls)
        self.clock = clock
        self.step = step
        self.quiesce = None
        self.timeouts: list[int] = []
        self.hints: list[dict] = []
        self.on_poll = on_poll  # called with the poll's index before it returns (e.g. a rebalance)
        self.n = 0

    def set_quiesce(self, wait):
        self.quiesce = wait

    def poll(self, timeout_ms: int = 0) -> list[Record]:
        self.timeouts.append(timeout_ms)
        if self.on_poll:
            self.on_poll(self.n)
        self.n += 1
        self.clock.now += self.step
        return self.polls.pop(0) if self.polls else []

    def lag(self):
        return {("t", 0): 0} if not self.polls else {("t", 0): 1}

    def assignment(self):
        return {("t", 0)}

    def group_stable(self):
        return True

    def commit_hint(self, offsets):
        self.hints.append(offsets)


class FakeBackend:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def apply(self, group: str, batch: ApplyBatch) -> ApplyResult:
        self.batches.append(batch.offsets_seen)  # type: ignore[attr-defined]
        return ApplyResult(rows=batch.events, dead_letters=0, unappliable_toast=0)


def plan(records: list[Record]) -> ApplyBatch:
    batch = ApplyBatch([], [], {("t", 0): records[-1].offset + 1}, events=len(records))
    batch.offsets_seen = [r.offset for r in records]  # type: ignore[attr-defined]
    return batch


def one_record_polls(n: int) -> list[list[Record]]:
    return [[Record("t", 0, i, b"k", b"v")] for i in range(n)]


def worker(consumer, backend, clock, linger_s: float, max_records: int = 20000) -> Worker:
    return Worker(backend, consumer, plan, "g", say=lambda _m: None, linger_s=linger_s, max_records=max_records,
                  clock=clock)


def stop_when_drained(w: Worker, consumer: FakeConsumer, extra_polls: int = 20):
    """Stop the worker once the fake consumer has been polled `extra_polls` times past its records."""
    total = len(consumer.polls) + extra_polls
    inner = consumer.on_poll

    def on_poll(i: int) -> None:
        if inner:
            inner(i)
        if i >= total:
            w.stop()

    consumer.on_poll = on_poll


def test_without_linger_every_poll_is_a_batch():
    clock = Clock()
    consumer, backend = FakeConsumer(one_record_polls(6), clock), FakeBackend()
    w = worker(consumer, backend, clock, linger_s=0.0)
    stop_when_drained(w, consumer)
    stats = w.run(install_signals=False)
    assert backend.batches == [[0], [1], [2], [3], [4], [5]]
    assert stats.batches == 6 and stats.polls == 6


def test_linger_coalesces_polls_into_one_batch_per_interval_in_order():
    clock = Clock()
    consumer, backend = FakeConsumer(one_record_polls(12), clock, step=0.1), FakeBackend()
    w = worker(consumer, backend, clock, linger_s=0.5)
    stop_when_drained(w, consumer)
    stats = w.run(install_signals=False)
    # the first record after a quiet period is cut at once; then one cut every 0.5 s of the fake clock
    assert backend.batches[0] == [0]
    assert [o for b in backend.batches for o in b] == list(range(12)), "every record once, in poll order"
    assert all(len(b) <= 5 for b in backend.batches)
    assert len(backend.batches) < 12
    assert stats.events == 12 and stats.polls == 12 and stats.batches == len(backend.batches)
    assert consumer.hints[-1] == {("t", 0): 12}
    # while records wait, a poll waits only until the next cut is due (never the idle 300 ms)
    assert any(t < 300 for t in consumer.timeouts)


def test_a_full_batch_is_cut_without_waiting_for_the_interval():
    clock = Clock()
    polls = [[Record("t", 0, i * 4 + j, b"k", b"v") for j in range(4)] for i in range(5)]
    consumer, backend = FakeConsumer(polls, clock, step=0.001), FakeBackend()
    w = worker(consumer, backend, clock, linger_s=60.0, max_records=8)
    stop_when_drained(w, consumer, extra_polls=3)
    w.run(install_signals=False)
    sizes = [len(b) for b in backend.batches]
    assert sizes[0] == 4  # the first poll after the quiet start: at once
    assert sizes[1:3] == [8, 8]  # then cut as soon as max_records wait, long before 60 s
    assert [o for b in backend.batches for o in b] == list(range(20))  # the stop applied the rest


def test_a_stop_applies_the_records_that_were_lingering():
    clock = Clock()
    consumer, backend = FakeConsumer(one_record_polls(3), clock, step=0.01), FakeBackend()
    w = worker(consumer, backend, clock, linger_s=60.0)
    stop_when_drained(w, consumer, extra_polls=0)
    stats = w.run(install_signals=False)
    assert backend.batches == [[0], [1, 2]]
    assert stats.events == 3
    assert consumer.hints[-1] == {("t", 0): 3}


def test_a_rebalance_applies_the_lingering_records_before_the_partitions_move():
    clock = Clock()
    seen_at_rebalance: list[list[list[int]]] = []
    consumer, backend = FakeConsumer(one_record_polls(6), clock, step=0.01), FakeBackend()

    def rebalance(i: int) -> None:
        if i == 4:  # inside poll(), as kafka-python calls the rebalance listener
            consumer.quiesce()
            seen_at_rebalance.append([list(b) for b in backend.batches])

    consumer.on_poll = rebalance
    w = worker(consumer, backend, clock, linger_s=60.0)
    stop_when_drained(w, consumer, extra_polls=2)
    w.run(install_signals=False)
    # polls 0..3 were collected; the rebalance cut and applied them (with their offsets) before returning
    assert seen_at_rebalance == [[[0], [1, 2, 3]]]
    assert [o for b in backend.batches for o in b] == list(range(6))


def test_until_caught_up_never_lingers():
    clock = Clock()
    consumer, backend = FakeConsumer(one_record_polls(4), clock, step=0.01), FakeBackend()
    w = worker(consumer, backend, clock, linger_s=60.0)
    w.run(until_caught_up=True, install_signals=False)
    assert backend.batches == [[0], [1], [2], [3]]


def test_the_status_line_carries_batches_and_cpu_by_stage():
    stats = RunStats(batches=3, events=10, poll_cpu=0.5, plan_cpu=1.25, apply_cpu=2.0, status_cpu=0.125,
                     replica_cpu=0.25, replica_copy_cpu=0.5, process_cpu0=1e9)  # "other" clamps at 0
    from pipelines.bench.e2e_bench import parse_status_line, stage_costs

    parsed = parse_status_line(stats.line(lag=7))
    assert parsed == {"events": 10, "batches": 3, "poll_cpu": 0.5, "plan_cpu": 1.25, "apply_cpu": 2.0,
                      "status_cpu": 0.125, "replica_cpu": 0.75, "other_cpu": 0.0}
    later = {**parsed, "events": 20, "batches": 4, "apply_cpu": 3.0}
    costs = stage_costs(parsed, later)
    assert costs["events"] == 10 and costs["batches"] == 1 and costs["events_per_batch"] == 10.0
    assert costs["cpu_us_per_event"]["apply"] == 100_000.0 and costs["cpu_us_per_event"]["poll"] == 0.0
    assert stage_costs(parsed, parsed) is None


def test_fetch_settings_let_the_broker_wait_for_the_linger():
    from pipelines.kafka.consumer import FETCH_MAX_WAIT_MS_CAP, FETCH_MIN_BYTES_LINGERING, fetch_settings

    assert fetch_settings(250) == {"fetch_min_bytes": FETCH_MIN_BYTES_LINGERING, "fetch_max_wait_ms": 250}
    assert fetch_settings(60_000)["fetch_max_wait_ms"] == FETCH_MAX_WAIT_MS_CAP
    assert fetch_settings(0) == {"fetch_min_bytes": 1, "fetch_max_wait_ms": 200}  # no linger: as before
