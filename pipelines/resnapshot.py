"""`reporting resnapshot TABLE`: re-read a source table through its Debezium connector, with progress.

Heals what replaying dead letters cannot: after source-side drift (a renamed or retyped column that
was fixed later) the dead letters keep the old shape, and the rows they would have written stay stale.
A snapshot re-emits every current row of the source table as `op=r` events; the pipeline applies them
like any change (source positions decide, so nothing goes backwards). Works on both engines: the
signal goes through the connector's Kafka signal channel (`signal.enabled.channels` with `kafka`,
topic `signal.kafka.topic` — the estate fills both).

Progress: the source table's change topic(s) are watched until as many new records as the table has
rows arrived (or nothing arrived for `quiet_s`); applying them is the stream's (or `reporting ingest`'s)
job, which this command says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.settings import Settings
from pipelines.source_db import source_row_count


@dataclass
class ResnapshotResult:
    service: str
    source_tables: tuple[str, ...]
    contract_tables: tuple[str, ...]
    signal_id: str
    source_rows: int | None
    records_seen: int
    seconds: float


def topic_end(settings: Settings, topics: list[str]) -> int:
    """Sum of the end offsets of every partition of `topics` (0 for a topic that does not exist yet)."""
    from kafka import KafkaConsumer, TopicPartition

    from pipelines.kafka.security import client_config

    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False, request_timeout_ms=10000)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return sum(consumer.end_offsets(tps).values()) if tps else 0
    finally:
        consumer.close()


def resnapshot(settings: Settings, table: str, snapshot_type: str = "blocking", wait: bool = True,
               quiet_s: float = 30.0, timeout_s: float = 1800.0,
               say: Callable[[str], None] = print) -> ResnapshotResult:
    """Send the snapshot signal for the source table feeding `table` (a contract table, contract name,
    source table or topic) and, with `wait`, show progress until its rows reached Kafka."""
    from pipelines.connect.signals import resolve_target, send_execute_snapshot
    from pipelines.projection import load_estate_projections

    projections = load_estate_projections(settings.estate)
    target = resolve_target(table, projections)
    topics = sorted(t for t, tp in projections.items() if tp.source_table in target.source_tables)
    rows = sum(n for n in (source_row_count(settings, target.service, s) for s in target.source_tables)
               if n is not None) if wait else None
    before = topic_end(settings, topics) if wait else 0
    signal_id, _topic, _offset = send_execute_snapshot(settings, target.service, target.source_tables, snapshot_type)
    say(f"sent a {snapshot_type} snapshot signal for {', '.join(target.source_tables)} ({target.service}) "
        f"→ contract tables {', '.join(target.contract_tables)}")
    started = time.monotonic()
    seen = 0
    if wait:
        last_growth, last_said = started, 0.0
        while True:
            now_seen = topic_end(settings, topics) - before
            now = time.monotonic()
            if now_seen > seen:
                seen, last_growth = now_seen, now
            if now - last_said >= 5 or (rows is not None and seen >= rows):
                rate = seen / max(now - started, 1e-9)
                of = f" of {rows:,} rows" if rows is not None else ""
                say(f"  {seen:,} change records{of} in Kafka ({rate:,.0f}/s, {now - started:,.0f}s)")
                last_said = now
            if rows is not None and seen >= rows:
                break
            if now - last_growth > quiet_s or now - started > timeout_s:
                say(f"  no new records for {quiet_s:.0f}s: the connector may still be starting its snapshot "
                    "(`reporting connectors status`)")
                break
            time.sleep(1.0)
        say("the running `reporting stream` applies them; without one, run `reporting ingest`")
    return ResnapshotResult(target.service, target.source_tables, target.contract_tables, signal_id, rows, seen,
                            time.monotonic() - started)
