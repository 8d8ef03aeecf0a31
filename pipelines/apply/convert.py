"""Bridge from the pure planner's BatchPlan to the backend's column-major ApplyBatch (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping

from pipelines.apply.backend import ApplyBatch, DeadLetterRow, TableBatch
from pipelines.cdc.plan import BatchPlan, TablePlan
from pipelines.contract.model import Contract


def table_batch(tp: TablePlan, contract: Contract) -> TableBatch:
    idx = {name: i for i, name in enumerate(tp.columns)}
    data_cols = [c.name for c in contract.columns]
    n_up = len(tp.upserts)
    columns = [[row[idx[c]] for row in tp.upserts] for c in data_cols]
    pos_i, ts_i, op_i = idx["_source_position"], idx["_source_ts"], idx["_op"]
    positions = [row[pos_i] for row in tp.upserts]
    source_ts = [row[ts_i] for row in tp.upserts]
    ops = [row[op_i] for row in tp.upserts]
    is_delete = [False] * n_up
    keep: dict[str, list[bool]] = {}
    if tp.keep_masks:
        for c in data_cols:
            flags = [mask[idx[c]] for mask in tp.keep_masks]
            if any(flags):
                keep[c] = flags
    has_values = [True] * n_up
    if tp.deletes:
        key_pos = {k: i for i, k in enumerate(tp.key_columns)}
        images = tp.delete_images
        for ci, c in enumerate(data_cols):
            ki = key_pos.get(c)
            ri = idx[c]
            columns[ci].extend(images[di][ri] if di in images else (key[ki] if ki is not None else None)
                               for di, (key, _, _) in enumerate(tp.deletes))
        has_values.extend(di in images for di in range(len(tp.deletes)))
        positions.extend(p for _, p, _ in tp.deletes)
        source_ts.extend(ts for _, _, ts in tp.deletes)
        ops.extend("d" for _ in tp.deletes)
        is_delete.extend(True for _ in tp.deletes)
        for flags in keep.values():
            flags.extend(False for _ in tp.deletes)
    return TableBatch(contract, columns, positions, source_ts, ops, is_delete, keep, has_values,
                      list(tp.truncates))


def apply_batch(plan: BatchPlan, contracts: Mapping[str, Contract],
                source_tables: Mapping[str, str] | None = None) -> ApplyBatch:
    """`contracts`: {physical_name: Contract}; `source_tables`: {topic: source table} for dead-letter rows."""
    tables = [table_batch(tp, contracts[name]) for name, tp in plan.tables.items()]
    src = source_tables or {}
    dead = [DeadLetterRow(d.topic, d.partition, d.offset, d.stage, d.reason, src.get(d.topic), d.target, d.key, d.value)
            for d in plan.dead_letters]
    return ApplyBatch(tables, dead, plan.next_offsets(), events=plan.records)
