"""`reporting status`: what an operator needs at a glance, per contract table and per partition.

Dead letters per contract table: a dead letter with a target table counts for that table. One that
failed before its table was known (stage 'decode': malformed envelope, a Kafka key that names another
row, an oversized record...) counts for every contract table its topic (or source table) feeds, given
as `feeds` (`Planner.feeds`; the same rule as the Dagster check `no_dead_letters`), so the table an
operator looks at shows it. What no projection feeds (stage 'route': a topic without a projection)
belongs to no contract table: `unrouted_dead_letters` counts it, for a separate "unrouted" line.

"Last error" of a table: the newest of (a) its newest pending dead letter, by first_seen_at then id,
shown as `topic[partition]@offset stage: reason`, and (b) `_pipeline.table_status.last_error` at
`last_error_at` (an error recorded without a time is kept: it cannot be shown to be older).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.apply.backend import Backend
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


@dataclass(frozen=True)
class DeadLetterTally:
    """Pending dead letters attributed to one contract table (or unrouted): how many, and the newest."""

    count: int
    newest_error: str
    """`topic[partition]@offset stage: reason` of the newest one."""
    newest_at: Any
    newest_id: int


# count and newest pending dead letter per (target table, source table, topic); both dialects
_DEAD_LETTER_GROUPS = """
SELECT target_table, source_table, topic, n, kafka_partition, kafka_offset, stage, reason, first_seen_at, id
FROM (SELECT target_table, source_table, topic, kafka_partition, kafka_offset, stage, reason, first_seen_at, id,
             count(*) OVER (PARTITION BY target_table, source_table, topic) AS n,
             row_number() OVER (PARTITION BY target_table, source_table, topic
                                ORDER BY first_seen_at DESC, id DESC) AS newest
      FROM _pipeline.dead_letters WHERE replayed_at IS NULL) d
WHERE newest = 1"""

UNROUTED = ""
"""Key of `dead_letter_tallies` for dead letters that no contract table is fed from."""


def _later(a: tuple[Any, int], b: tuple[Any, int]) -> bool:
    """(first_seen_at, id) a is newer than b (a missing time counts as oldest)."""
    if a[0] is None or b[0] is None:
        return (a[0] is not None, a[1]) > (b[0] is not None, b[1])
    return a > b


def dead_letter_tallies(backend: Backend, feeds: Mapping[str, Sequence[str]] | None = None
                        ) -> dict[str, DeadLetterTally]:
    """Pending dead letters per contract table, with the newest of each (see the module docstring).

    `feeds`: topic or source table → the contract tables its projection feeds (`Planner.feeds`). A dead
    letter without a target table counts for each of them; when they are unknown it is UNROUTED."""
    feeds = feeds or {}
    out: dict[str, DeadLetterTally] = {}
    for target, source, topic, n, partition, offset, stage, reason, seen, dl_id in backend.query(_DEAD_LETTER_GROUPS):
        tables = [target] if target else list(feeds.get(topic) or feeds.get(source or "") or ()) or [UNROUTED]
        error = f"{topic}[{partition}]@{offset} {stage}: {reason}"
        for t in tables:
            prev = out.get(t)
            if prev is None:
                out[t] = DeadLetterTally(int(n), error, seen, dl_id)
            elif _later((seen, dl_id), (prev.newest_at, prev.newest_id)):
                out[t] = DeadLetterTally(prev.count + int(n), error, seen, dl_id)
            else:
                out[t] = DeadLetterTally(prev.count + int(n), prev.newest_error, prev.newest_at, prev.newest_id)
    return out


def unrouted_dead_letters(backend: Backend, feeds: Mapping[str, Sequence[str]] | None = None
                          ) -> DeadLetterTally | None:
    """Pending dead letters that feed no contract table (e.g. a topic without a projection), for a
    separate "unrouted" line of `reporting status`; None when there are none."""
    return dead_letter_tallies(backend, feeds).get(UNROUTED)


def _newest_error(status_error: str | None, status_at: Any, tally: DeadLetterTally | None) -> str | None:
    if tally is None:
        return status_error
    if status_error is None:
        return tally.newest_error
    if status_at is None or tally.newest_at is None or status_at >= tally.newest_at:
        return status_error
    return tally.newest_error


def table_statuses(backend: Backend, contracts: list[Contract],
                   feeds: Mapping[str, Sequence[str]] | None = None) -> list[TableStatus]:
    """One TableStatus per contract; `feeds` (`Planner.feeds`) attributes dead letters that failed
    before their table was known to the tables their topic feeds (module docstring)."""
    now = dt.datetime.now(dt.UTC)
    status = {r[0]: r[1:] for r in backend.query(
        "SELECT physical_name, newest_source_ts, last_error, last_error_at FROM _pipeline.table_status")}
    tallies = dead_letter_tallies(backend, feeds)
    out = []
    for c in contracts:
        live = ' WHERE "_deleted_at" IS NULL' if c.delete_semantics == "soft" else ""
        rows = int(backend.query(f'SELECT count(*) FROM reporting."{c.physical_name}"{live}')[0][0])
        newest, last_error, last_error_at = status.get(c.physical_name, (None, None, None))
        fresh = (now - newest).total_seconds() if newest is not None else None
        tally = tallies.get(c.physical_name)
        out.append(TableStatus(c.physical_name, rows, fresh, c.freshness_seconds, tally.count if tally else 0,
                               _newest_error(last_error, last_error_at, tally)))
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


@dataclass(frozen=True)
class DriftFlag:
    """A source table whose changes stopped matching its projection (dead letters of stage 'drift')."""

    topic: str
    source_table: str
    first_position: str
    """topic[partition]@offset of the first drifted change still pending."""
    first_seen_at: object
    dead_letters: int
    reason: str
    """The first one's reason: which column is missing, or which value has another type."""


def drift_flags(backend: Backend, source_tables: dict[str, str] | None = None) -> list[DriftFlag]:
    """Per topic, the pending dead letters of stage 'drift' (missing column, changed type) and the first
    position they were seen at; healed by a projection fix + replay, or by `reporting resnapshot`."""
    rows = backend.query("SELECT topic, kafka_partition, kafka_offset, first_seen_at, reason FROM _pipeline.dead_letters "
                         "WHERE stage = 'drift' AND replayed_at IS NULL ORDER BY id")
    flags: dict[str, list] = {}
    for topic, partition, offset, seen, reason in rows:
        if topic not in flags:
            flags[topic] = [f"{topic}[{partition}]@{offset}", seen, 0, reason]
        flags[topic][2] += 1
    return [DriftFlag(t, (source_tables or {}).get(t, t), pos, seen, n, reason)
            for t, (pos, seen, n, reason) in sorted(flags.items())]
