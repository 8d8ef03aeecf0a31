"""Kafka's copy of the group's offsets is only a hint, but it must not stay behind for good: a commit
refused during a rebalance is sent again, and an assignment hints the stored offsets."""

import pytest
from kafka import TopicPartition
from kafka.errors import RebalanceInProgressError

from pipelines.kafka import consumer as consumer_module
from pipelines.kafka.consumer import ChangeConsumer, _SeekToStored

pytestmark = pytest.mark.unit


class FakeKafka:
    def __init__(self, assigned):
        self.assigned = {TopicPartition(t, p) for t, p in assigned}
        self.refuse = 0
        self.commits: list[dict] = []
        self.seeks: dict = {}

    def assignment(self):
        return set(self.assigned)

    def commit(self, offsets):
        if self.refuse:
            self.refuse -= 1
            raise RebalanceInProgressError("rebalancing")
        self.commits.append({(tp.topic, tp.partition): m.offset for tp, m in offsets.items()})

    def poll(self, timeout_ms, max_records):
        return {}

    def seek(self, tp, offset):
        self.seeks[(tp.topic, tp.partition)] = offset

    def seek_to_beginning(self, tp):
        self.seeks[(tp.topic, tp.partition)] = 0


def change_consumer(fake, stored=None):
    c = object.__new__(ChangeConsumer)  # no broker: the hint logic only
    c.consumer = fake
    c.max_records = 100
    c._listener = _SeekToStored(fake, lambda: dict(stored or {}))
    c._listener.hint = c._queue_hints
    c._unsent = {}
    c._retry_at = 0.0
    return c


def test_a_refused_hint_is_sent_again_with_the_newest_offsets(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(consumer_module.time, "monotonic", lambda: clock[0])
    fake = FakeKafka([("t", 0), ("t", 1)])
    fake.refuse = 1
    c = change_consumer(fake)
    c.commit_hint({("t", 0): 50, ("t", 1): 7})
    assert fake.commits == []
    c.poll()  # within the second after the refusal: not yet
    assert fake.commits == []
    clock[0] += 1.5
    c.commit_hint({("t", 0): 80})  # a newer batch meanwhile: the newest offset per partition goes out
    assert fake.commits == [{("t", 0): 80, ("t", 1): 7}]
    c.poll()
    assert len(fake.commits) == 1  # nothing left to send


def test_a_hint_is_retried_by_poll_alone_when_no_new_batch_comes(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(consumer_module.time, "monotonic", lambda: clock[0])
    fake = FakeKafka([("t", 0)])
    fake.refuse = 2
    c = change_consumer(fake)
    c.commit_hint({("t", 0): 9})
    clock[0] += 1.1
    c.poll()
    assert fake.commits == []  # refused a second time
    clock[0] += 1.1
    c.poll()
    assert fake.commits == [{("t", 0): 9}]


def test_hints_of_partitions_given_away_are_dropped():
    fake = FakeKafka([("t", 0), ("t", 1)])
    fake.refuse = 1
    c = change_consumer(fake)
    c.commit_hint({("t", 0): 5, ("t", 1): 6})
    fake.assigned = {TopicPartition("t", 1)}
    c._retry_at = 0.0
    c.poll()
    assert fake.commits == [{("t", 1): 6}]


def test_an_assignment_hints_the_stored_offsets():
    fake = FakeKafka([("t", 0), ("t", 1)])
    c = change_consumer(fake, stored={("t", 0): 42})
    c._listener.on_partitions_assigned([TopicPartition("t", 0), TopicPartition("t", 1)])
    assert fake.seeks == {("t", 0): 42, ("t", 1): 0}
    c.poll()
    assert fake.commits == [{("t", 0): 42}]  # nothing stored for partition 1: nothing to hint
