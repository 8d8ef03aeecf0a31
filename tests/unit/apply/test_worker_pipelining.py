"""The worker polls and plans batch N+1 while batch N is applied, and still applies in order, once each.

Fakes stand in for Kafka and the reporting DB here (the real ones are exercised by the integration
and e2e suites); what is tested is the worker's own ordering, error and shutdown logic.
"""

from __future__ import annotations

import threading
import time

import pytest

from pipelines.apply.backend import ApplyBatch, ApplyResult
from pipelines.apply.worker import ApplyFailed, Worker
from pipelines.cdc.events import Record

pytestmark = pytest.mark.unit


class FakeConsumer:
    def __init__(self, batches: list[list[Record]]) -> None:
        self.batches = list(batches)
        self.hints: list[dict] = []
        self.quiesce = None
        self.thread = None

    def set_quiesce(self, wait):
        self.quiesce = wait

    def poll(self, timeout_ms: int = 0) -> list[Record]:
        self.thread = threading.current_thread()
        return self.batches.pop(0) if self.batches else []

    def lag(self):
        return {("t", 0): len(self.batches)}

    def assignment(self):
        return {("t", 0)}

    def group_stable(self):
        return True

    def commit_hint(self, offsets):
        assert threading.current_thread() is self.thread, "the consumer is used from one thread only"
        self.hints.append(offsets)


class FakeBackend:
    def __init__(self, delay: float = 0.1, fail_at: int | None = None) -> None:
        self.applied: list[int] = []
        self.delay = delay
        self.fail_at = fail_at
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def apply(self, group: str, batch: ApplyBatch) -> ApplyResult:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            first = next(iter(batch.next_offsets.values()))
            if self.fail_at is not None and first >= self.fail_at:
                raise ValueError("constraint violated")  # not transient: no retry
            time.sleep(self.delay)
            self.applied.append(first)
            return ApplyResult(rows=batch.events, dead_letters=0, unappliable_toast=0)
        finally:
            with self.lock:
                self.in_flight -= 1


def _batches(n: int, size: int = 3) -> list[list[Record]]:
    return [[Record("t", 0, i * size + j, b"k", b"v") for j in range(size)] for i in range(n)]


def _planner(planned_while_applying: list[bool], backend: FakeBackend):
    planned = [0]

    def plan(records: list[Record]) -> ApplyBatch:
        # while an earlier batch is submitted but not yet applied, look (with a deadline) for it in flight
        deadline = time.monotonic() + 5
        while (backend.in_flight == 0 and len(backend.applied) < planned[0]
               and backend.fail_at is None and time.monotonic() < deadline):
            time.sleep(0.001)
        planned_while_applying.append(backend.in_flight > 0)
        planned[0] += 1
        time.sleep(0.03)  # planning work
        return ApplyBatch([], [], {("t", 0): records[-1].offset + 1}, events=len(records))
    return plan


def test_batches_apply_in_order_once_each_while_the_next_is_planned():
    backend, consumer, overlapped = FakeBackend(), FakeConsumer(_batches(8)), []
    worker = Worker(backend, consumer, _planner(overlapped, backend), "g", say=lambda _m: None)
    before = time.monotonic()
    stats = worker.run(until_caught_up=True, install_signals=False)
    assert backend.applied == [3, 6, 9, 12, 15, 18, 21, 24]
    assert before <= stats.first_records_at <= time.monotonic() and stats.first_records_wall is not None
    assert backend.max_in_flight == 1
    assert stats.events == 24 and stats.batches == 8
    assert any(overlapped), "no batch was planned while the previous one was being applied"
    assert consumer.hints[-1] == {("t", 0): 24}  # every advisory commit sent, from the polling thread
    assert len(consumer.hints) == 8
    assert consumer.quiesce is not None


def test_a_failed_apply_stops_the_worker_with_its_error_and_nothing_after_it_is_applied():
    backend, consumer = FakeBackend(fail_at=9), FakeConsumer(_batches(6))
    worker = Worker(backend, consumer, _planner([], backend), "g", say=lambda _m: None, max_retries=0)
    with pytest.raises(ApplyFailed, match="constraint violated"):
        worker.run(until_caught_up=True, install_signals=False)
    assert backend.applied == [3, 6]
    assert {("t", 0): 9} not in consumer.hints


def test_stop_finishes_the_batch_in_flight():
    backend, consumer = FakeBackend(delay=0.3), FakeConsumer(_batches(50))
    worker = Worker(backend, consumer, _planner([], backend), "g", say=lambda _m: None)
    threading.Timer(0.5, worker.stop).start()
    stats = worker.run(install_signals=False)
    assert backend.in_flight == 0
    assert stats.batches == len(backend.applied) >= 1
    assert consumer.hints[-1] == {("t", 0): backend.applied[-1]}
