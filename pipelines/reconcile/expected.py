"""Expected contract rows from source rows, computed by the pipeline's own planner. Pure.

Each source row (already in Debezium's plain-JSON representation, see native.py) becomes a snapshot
read event (`op = r`) and a chunk of them is planned by `pipelines.cdc.plan.Planner`, the very code the
pipeline runs on Kafka batches: same decoders, same projection expressions, same contract validation
and value conversion (decimal scale, int widening...). A row the planner dead-letters is reported as
*invalid*, with the planner's reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.cdc.events import ChangeEvent, EventKind, Op
from pipelines.cdc.plan import Planner
from pipelines.projection.model import TableProjection
from pipelines.projection.validate import ContractLike

__all__ = ["ExpectedRows", "TargetRows"]


@dataclass
class TargetRows:
    """What one chunk of source rows should look like in one contract table."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    """Validated rows: contract columns in contract order (then provenance values, to be ignored)."""
    invalid: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    """(source row image, reason) for each row the pipeline would dead-letter for this target."""


class ExpectedRows:
    """Planner for one source table, restricted to the `targets` asked for (default: all of them)."""

    def __init__(self, table: TableProjection, contracts: Mapping[str, ContractLike],
                 targets: Sequence[str] | None = None) -> None:
        if targets is not None:
            table = dataclasses.replace(table, targets=tuple(t for t in table.targets if t.physical_name in targets))
        self.table = table
        self.targets = tuple(t.physical_name for t in table.targets)
        self._planner = Planner({table.topic: table}, contracts)

    def project(self, rows: Sequence[dict[str, Any]]) -> dict[str, TargetRows]:
        """Source row images (column → Debezium JSON value) → per target physical name, its rows."""
        t = self.table
        events = [ChangeEvent(EventKind.CHANGE, Op.READ, t.source_table, t.engine, None, row, None, 0, None, None,
                              t.topic, 0, i) for i, row in enumerate(rows)]
        plan = self._planner.plan(events)
        out = {name: TargetRows() for name in self.targets}
        for name, tp in plan.tables.items():
            out[name].rows = tp.upserts
        for dead in plan.dead_letters:
            row = rows[dead.offset]
            for name in ([dead.target] if dead.target else self.targets):
                out[name].invalid.append((row, f"{dead.stage}: {dead.reason}"))
        return out

    def source_key(self, row: dict[str, Any], target: str) -> dict[str, Any] | None:
        """{contract key column: decoded value} of a source row for `target`, or None if it cannot be decoded."""
        try:
            decoded = self.table.decode_key(row)
        except Exception:  # noqa: BLE001 - an undecodable key is reported as such
            return None
        tgt = self.table.target(target)
        return dict(zip(tgt.key_columns, decoded, strict=True))
