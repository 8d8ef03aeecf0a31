"""A consumer group's progress over every change topic of the estate: the sum of end offsets and of
the group's committed offsets (Kafka's copy; the pipeline commits it after each batch's transaction)."""

from __future__ import annotations

import re
import time

from pipelines.settings import Settings


class GroupOffsets:
    def __init__(self, settings: Settings, group: str) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        from pipelines.kafka.security import client_config

        self.group = group
        config = client_config(settings)
        self.admin = KafkaAdminClient(**config, request_timeout_ms=15000)
        self.consumer = KafkaConsumer(**config, group_id=None, enable_auto_commit=False)
        prefixes = sorted(s.topic_prefix for s in settings.estate.services)
        self.pattern = re.compile(rf"^({'|'.join(map(re.escape, prefixes))})\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
        self._parts: list = []
        self._refreshed = 0.0

    def _partitions(self) -> list:
        from kafka import TopicPartition

        if time.monotonic() - self._refreshed > 10:
            topics = [t for t in self.consumer.topics() if self.pattern.match(t)]
            self._parts = [TopicPartition(t, p) for t in topics for p in (self.consumer.partitions_for_topic(t) or [])]
            self._refreshed = time.monotonic()
        return self._parts

    def ends_and_committed(self) -> tuple[int, int]:
        parts = self._partitions()
        ends = self.consumer.end_offsets(parts) if parts else {}
        committed = self.admin.list_group_offsets({self.group: None}).get(self.group, {})
        return (sum(ends.values()),
                sum(committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0 for tp in parts))

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()
