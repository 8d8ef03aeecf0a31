"""Dead letters: list them, and replay them after a fix (projection, contract or source data).

Replay re-plans the stored raw key/value with the CURRENT projections and contracts and applies
what now succeeds in one transaction (rows + `replayed_at`); what still fails stays, with its
retry count raised and its new reason. Offsets are not touched: the events were consumed already.
Replaying an event older than the stored row is a harmless no-op (positions decide).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.apply.backend import ApplyBatch, Backend
from pipelines.apply.convert import apply_batch
from pipelines.apply.runner import PipelineParts
from pipelines.cdc.events import Record


@dataclass(frozen=True)
class DeadLetterView:
    id: int
    topic: str
    partition: int
    offset: int
    stage: str
    reason: str
    target_table: str | None
    retries: int
    first_seen_at: object


def list_dead_letters(backend: Backend, table: str | None = None, include_replayed: bool = False,
                      limit: int = 50) -> list[DeadLetterView]:
    where = ["TRUE"]
    params: list = []
    if not include_replayed:
        where.append("replayed_at IS NULL")
    if table:
        where.append("(target_table = ? OR source_table = ? OR topic = ?)")
        params += [table, table, table]
    rows = backend.query(
        "SELECT id, topic, kafka_partition, kafka_offset, stage, reason, target_table, retries, first_seen_at "
        f"FROM _pipeline.dead_letters WHERE {' AND '.join(where)} ORDER BY id LIMIT {int(limit)}", params or None)
    return [DeadLetterView(*r) for r in rows]


def count_dead_letters(backend: Backend) -> dict[str, int]:
    rows = backend.query("SELECT coalesce(target_table, source_table, topic), count(*) FROM _pipeline.dead_letters "
                         "WHERE replayed_at IS NULL GROUP BY 1")
    return {k: int(v) for k, v in rows}


@dataclass(frozen=True)
class ReplayResult:
    attempted: int
    replayed: int
    still_failing: int
    rows: int
    failing_by_topic: dict[str, int] = field(default_factory=dict)
    """Dead letters that failed again, per topic: replay re-plans the event as it was captured, so these
    can only succeed after another projection/contract change, or be superseded by re-reading the
    source table's current rows (`reporting resnapshot`)."""


def replay(backend: Backend, parts: PipelineParts, group: str, table: str | None = None,
           batch_size: int = 5000) -> ReplayResult:
    """Re-plan and apply pending dead letters (optionally of one table / topic)."""
    attempted = replayed = failing = rows = 0
    failing_by_topic: dict[str, int] = {}
    last_id = 0
    while True:
        where = "replayed_at IS NULL AND id > ?"
        params: list = [last_id]
        if table:
            where += " AND (target_table = ? OR source_table = ? OR topic = ?)"
            params += [table, table, table]
        pending = backend.query(
            "SELECT id, topic, kafka_partition, kafka_offset, record_key, record_value FROM _pipeline.dead_letters "
            f"WHERE {where} ORDER BY id LIMIT {int(batch_size)}", params)
        if not pending:
            break
        last_id = pending[-1][0]
        # one record can have several dead letters (one per target table it feeds)
        by_pos: dict[tuple[str, int, int], list[int]] = {}
        records = []
        for i, t, p, o, k, v in pending:
            if (t, p, o) not in by_pos:
                records.append(Record(t, p, o, bytes(k) if k is not None else None,
                                      bytes(v) if v is not None else None))
            by_pos.setdefault((t, p, o), []).append(i)
        plan = parts.planner.plan_records(records)
        failed: dict[int, str] = {}
        for d in plan.dead_letters:
            for dl_id in by_pos.get((d.topic, d.partition, d.offset), []):
                failed[dl_id] = f"{d.stage}: {d.reason}"
                failing_by_topic[d.topic] = failing_by_topic.get(d.topic, 0) + 1
        base = apply_batch(plan, parts.contracts, parts.source_tables)
        all_ids = [i for ids in by_pos.values() for i in ids]
        batch = ApplyBatch(base.tables, [], {}, replayed_dead_letter_ids=[i for i in all_ids if i not in failed],
                           failed_again=sorted(failed.items()))
        result = backend.apply(group, batch)
        attempted += len(pending)
        failing += len(failed)
        replayed += len(pending) - len(failed)
        rows += result.rows
    return ReplayResult(attempted, replayed, failing, rows, failing_by_topic)
