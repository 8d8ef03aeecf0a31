"""`reporting status`: what an operator needs at a glance, per contract table and per partition."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipelines.apply.backend import Backend
from pipelines.apply.dead_letters import count_dead_letters
from pipelines.contract.model import Contract


@dataclass(frozen=True)
class TableStatus:
    physical_name: str
    rows: int
    freshness_s: float | None  # now - newest source timestamp applied
    objective_s: int
    dead_letters: int
    last_error: str | None

    @property
    def fresh(self) -> bool:
        return self.freshness_s is not None and self.freshness_s <= self.objective_s


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    next_offset: int
    end_offset: int | None

    @property
    def lag(self) -> int | None:
        return None if self.end_offset is None else max(0, self.end_offset - self.next_offset)


def table_statuses(backend: Backend, contracts: list[Contract]) -> list[TableStatus]:
    now = dt.datetime.now(dt.UTC)
    status = {r[0]: r[1:] for r in backend.query(
        "SELECT physical_name, newest_source_ts, last_error FROM _pipeline.table_status")}
    dlq = count_dead_letters(backend)
    out = []
    for c in contracts:
        live = ' WHERE "_deleted_at" IS NULL' if c.delete_semantics == "soft" else ""
        rows = int(backend.query(f'SELECT count(*) FROM reporting."{c.physical_name}"{live}')[0][0])
        newest, last_error = status.get(c.physical_name, (None, None))
        fresh = (now - newest).total_seconds() if newest is not None else None
        out.append(TableStatus(c.physical_name, rows, fresh, c.freshness_seconds, dlq.get(c.physical_name, 0),
                               last_error))
    return out


def events_per_second(backend: Backend, group: str, window_s: int = 60) -> float:
    rows = backend.query("SELECT coalesce(sum(events), 0) FROM _pipeline.batches WHERE consumer_group = ? "
                         f"AND applied_at > now() - INTERVAL '{int(window_s)} seconds'", [group])
    return float(rows[0][0]) / window_s


def partition_lags(stored: dict[tuple[str, int], int], bootstrap: str | dict | None) -> list[PartitionLag]:
    ends: dict[tuple[str, int], int] = {}
    if bootstrap and stored:
        from kafka import KafkaConsumer, TopicPartition

        from pipelines.kafka.security import as_client_kwargs

        consumer = KafkaConsumer(**as_client_kwargs(bootstrap), enable_auto_commit=False, request_timeout_ms=5000)
        try:
            tps = [TopicPartition(t, p) for t, p in stored]
            ends = {(tp.topic, tp.partition): o for tp, o in consumer.end_offsets(tps).items()}
        finally:
            consumer.close()
    return [PartitionLag(t, p, o, ends.get((t, p))) for (t, p), o in sorted(stored.items())]
