"""On a rebalance the consumer waits for the worker's batch in flight before it touches offsets."""

from __future__ import annotations

import pytest
from kafka.structs import TopicPartition

from pipelines.kafka.consumer import _SeekToStored

pytestmark = pytest.mark.unit


class _Consumer:
    def __init__(self, calls: list) -> None:
        self.calls = calls

    def seek(self, tp, offset):
        self.calls.append(("seek", tp.partition, offset))

    def seek_to_beginning(self, tp):
        self.calls.append(("beginning", tp.partition))


def test_quiesce_runs_before_offsets_are_given_up_or_read():
    calls: list = []

    def stored():
        calls.append("stored")
        return {("t", 0): 42}

    listener = _SeekToStored(_Consumer(calls), stored)
    listener.quiesce = lambda: calls.append("quiesce")
    listener.on_partitions_revoked({TopicPartition("t", 0)})
    listener.on_partitions_assigned([TopicPartition("t", 0), TopicPartition("t", 1)])
    assert calls == ["quiesce", "quiesce", "stored", ("seek", 0, 42), ("beginning", 1)]
