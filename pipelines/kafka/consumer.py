"""kafka-python adapter: a consumer whose positions come from the reporting DB, not from Kafka.

Offsets live in `_pipeline.offsets`, written in the same transaction as the rows they produced
(exactly-once effect). On every partition assignment the consumer seeks to the stored offset (or
to the beginning when none is stored). Kafka's own group commit is written afterwards as a hint
for lag tooling only; it is never read back. A hint Kafka refuses (e.g. during a rebalance) is kept
and sent again before the next polls, and a partition's stored offset is hinted when it is assigned,
so the group's committed offsets reach what was applied even when no new record comes.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.structs import MemberState, OffsetAndMetadata

from pipelines.cdc.events import Record
from pipelines.kafka.records import fast_partition_records

log = logging.getLogger(__name__)

SOURCE_TOPIC_PATTERN = r"^({prefixes})\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$"


def topic_pattern(prefixes: Iterable[str]) -> str:
    """Regex for the change topics of the given connector prefixes (<prefix>.<schema|db>.<table>)."""
    return SOURCE_TOPIC_PATTERN.format(prefixes="|".join(re.escape(p) for p in sorted(prefixes)))


class _SeekToStored(ConsumerRebalanceListener):
    def __init__(self, consumer: KafkaConsumer | None, stored: Callable[[], dict[tuple[str, int], int]]) -> None:
        self.consumer = consumer
        self.stored = stored
        self.quiesce: Callable[[], None] = lambda: None  # waits for the batch in flight (Worker's applier)
        self.hint: Callable[[dict[tuple[str, int], int]], None] = lambda _offsets: None

    def on_partitions_revoked(self, revoked):  # noqa: D401 - kafka-python callback
        # the batch in flight commits its rows and offsets before another worker may take the partitions
        self.quiesce()
        log.info("partitions revoked: %s", sorted((tp.topic, tp.partition) for tp in revoked))

    def on_partitions_assigned(self, assigned):
        self.quiesce()  # stored offsets are read only when no batch is in flight (one DB connection)
        offsets = self.stored()
        known = {}
        for tp in assigned:
            nxt = offsets.get((tp.topic, tp.partition))
            if nxt is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, nxt)
                known[(tp.topic, tp.partition)] = nxt
        self.hint(known)  # sent with the next poll, outside the rebalance
        log.info("assigned %d partition(s); positions from the reporting DB", len(assigned))


FETCH_MIN_BYTES_LINGERING = 1024 * 1024
"""While streaming with a linger, a fetch waits on the broker for this many bytes or `linger_ms`."""
FETCH_MAX_WAIT_MS_CAP = 5000
"""... but never longer than this (the client's request timeout, 30 s, must stay well above it)."""


def fetch_settings(linger_ms: int) -> dict[str, int]:
    """Fetch settings of a consumer that lingers `linger_ms` (0: kafka-python's, answer at the first byte).

    With fetch_min_bytes=1 a steady stream arrives in tens of tiny fetch responses a second, each decoded
    in Python on the client's IO thread: measured ~118 µs of CPU per record at ~750 events/s against
    25-31 µs with the broker waiting 250-500 ms (docs/benchmarks.md §8). A backlog still comes at once
    (full fetches)."""
    if linger_ms <= 0:
        return {"fetch_min_bytes": 1, "fetch_max_wait_ms": 200}
    return {"fetch_min_bytes": FETCH_MIN_BYTES_LINGERING, "fetch_max_wait_ms": min(int(linger_ms), FETCH_MAX_WAIT_MS_CAP)}


class ChangeConsumer:
    """Polls batches of raw records from the change topics of a set of connector prefixes."""

    def __init__(self, bootstrap: str | list[str], group_id: str, prefixes: Iterable[str],
                 stored_offsets: Callable[[], dict[tuple[str, int], int]], max_records: int = 20000,
                 client_id: str = "reporting-pipeline", security: dict | None = None,
                 group_instance_id: str | None = None, fetch_linger_ms: int = 0) -> None:
        # group_instance_id: a static member (KIP-345), e.g. the pod name of a StatefulSet worker; it
        # rejoins after a restart within session_timeout_ms without a rebalance and never sends LeaveGroup
        self._config = dict(
            **(security or {}),
            bootstrap_servers=bootstrap,
            group_id=group_id,
            group_instance_id=group_instance_id or None,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_records,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            **fetch_settings(fetch_linger_ms),
            session_timeout_ms=30000,
            max_poll_interval_ms=600000,
            metadata_max_age_ms=5000,
        )
        self.pattern = topic_pattern(prefixes)
        self._listener = _SeekToStored(None, stored_offsets)
        self._listener.hint = self._queue_hints
        self._unsent: dict[tuple[str, int], int] = {}
        self._retry_at = 0.0
        self.max_records = max_records
        self._open()

    def _open(self) -> None:
        self.consumer = KafkaConsumer(**self._config)
        # decode record batches with the pipeline's own v2 decoder (pipelines/kafka/records.py)
        fetcher = self.consumer._fetcher  # noqa: SLF001 - pinned kafka-python 3.0.12
        fetcher.PartitionRecords = fast_partition_records(type(fetcher).PartitionRecords)
        self._listener.consumer = self.consumer
        self.consumer.subscribe(pattern=self.pattern, listener=self._listener)

    def group_stable(self) -> bool:
        """The member finished its last rebalance (joined and got its assignment, possibly empty)."""
        coordinator = getattr(self.consumer, "_coordinator", None)  # pinned kafka-python 3.0.12
        return coordinator is None or coordinator.state == MemberState.STABLE

    def restart(self) -> None:
        """Close the Kafka consumer and open a new one (see kafka/stall.py): it joins the group again under
        the same member id and, once assigned, seeks to the stored offsets. Hints not yet sent are kept.
        The caller applies what it polled before (nothing polled from the old consumer stays pending)."""
        try:
            self.consumer.close(autocommit=False)
        except Exception as exc:  # noqa: BLE001 - a stuck client may fail to close cleanly; it is dropped anyway
            log.warning("closing the stalled Kafka consumer failed (dropped): %s", exc)
        self._open()

    def set_quiesce(self, wait: Callable[[], None]) -> None:
        """`wait` blocks until no batch is being applied; called before a rebalance reads or gives up offsets."""
        self._listener.quiesce = wait

    def poll(self, timeout_ms: int = 500) -> list[Record]:
        if self._unsent and time.monotonic() >= self._retry_at:
            self._send_hints()
        batch = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        out: list[Record] = []
        for tp, msgs in batch.items():
            if msgs and type(msgs[0]) is Record:
                out.extend(msgs)
            else:  # kafka-python's own path (e.g. a transactional batch read with READ_COMMITTED)
                out.extend(Record(tp.topic, tp.partition, m.offset, m.key, m.value) for m in msgs)
        return out

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment())

    def lag(self) -> dict[tuple[str, int], int]:
        """Records between our position and the end of each assigned partition."""
        parts = list(self.consumer.assignment())
        if not parts:
            return {}
        ends = self.consumer.end_offsets(parts)
        return {(tp.topic, tp.partition): max(0, ends[tp] - self.consumer.position(tp)) for tp in parts}

    def commit_hint(self, offsets: dict[tuple[str, int], int]) -> None:
        """Tell Kafka where we are (for lag tools); failures are harmless, the DB is authoritative."""
        self._queue_hints(offsets)
        self._send_hints()

    def _queue_hints(self, offsets: dict[tuple[str, int], int]) -> None:
        for key, nxt in offsets.items():
            if nxt > self._unsent.get(key, -1):
                self._unsent[key] = nxt

    def _send_hints(self) -> None:
        """Commit the queued hints of the partitions this member holds (a partition given away is its new
        owner's to hint); a refused commit stays queued and is tried again after a second."""
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        todo = {k: o for k, o in self._unsent.items() if k in assigned}
        self._unsent = todo
        if not todo:
            return
        try:
            self.consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in todo.items()})
        except Exception as exc:  # noqa: BLE001 - advisory only
            self._retry_at = time.monotonic() + 1.0
            log.warning("advisory Kafka offset commit failed (kept, sent again): %s", exc)
            return
        self._unsent = {}

    def close(self) -> None:
        self.consumer.close(autocommit=False)
