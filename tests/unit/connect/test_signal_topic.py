"""A missing signal topic is created with one partition (Debezium reads partition 0) and the cluster's default
replication (-1), not one replica that dies with its broker."""

import kafka
import pytest

from pipelines.connect.signals import ensure_signal_topic

pytestmark = pytest.mark.unit


class FakeAdmin:
    created: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def list_topics(self):
        return ["existing.signals"]

    def create_topics(self, topics):
        FakeAdmin.created.extend(topics)

    def close(self):
        pass


def test_a_missing_signal_topic_gets_one_partition_and_the_clusters_default_replication(monkeypatch):
    monkeypatch.setattr(kafka, "KafkaAdminClient", FakeAdmin)
    FakeAdmin.created = []
    ensure_signal_topic("broker:9092", "_reporting.signals.orders")
    ensure_signal_topic("broker:9092", "existing.signals")  # there already: left alone
    [topic] = FakeAdmin.created
    assert (topic.name, topic.num_partitions, topic.replication_factor) == ("_reporting.signals.orders", 1, -1)
