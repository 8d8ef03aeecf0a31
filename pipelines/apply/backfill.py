"""New contract targets start full: backfill a contract table that appears after its source was streamed.

When a new major is published (or a projection gets another target), the new physical table is
created empty while its source table's topic has long been consumed: without help it would only
collect rows that change from now on. At start, the pipeline finds such targets — no
`_pipeline.table_status` row and no backfill on record, while the group has stored offsets on the
source's topic — and asks the source's connector for a blocking snapshot of that source table
(`pipelines.connect.signals.send_execute_snapshot`). The snapshot's `op=r` events fill the new table;
the existing targets of the same source receive the same rows again, which positions make harmless.
`_pipeline.backfills` records each request (once per target) with the source's row count then, so
`reporting contract status` can show the progress.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class BackfillNeed:
    service: str
    source_table: str
    topic: str
    targets: tuple[str, ...]


def needs_backfill(projections: Mapping, known_targets: set[str], consumed_topics: set[str]) -> list[BackfillNeed]:
    """Targets never applied nor backfilled whose source topic the group already consumed (pure)."""
    out = []
    for topic, tp in sorted(projections.items()):
        if topic not in consumed_topics:
            continue  # a source never read yet: its initial snapshot fills every target
        new = tuple(sorted(t.physical_name for t in tp.targets if t.physical_name not in known_targets))
        if new:
            out.append(BackfillNeed(tp.service, tp.source_table, topic, new))
    return out


def request_backfills(settings, backend, group: str, projections: Mapping, live_targets: Iterable[str],
                      say: Callable[[str], None] = print) -> list[BackfillNeed]:
    """Find the targets that need a backfill, signal their connectors and record the requests."""
    from pipelines.connect.signals import SnapshotSignalError, send_execute_snapshot

    live = set(live_targets)
    known = {r[0] for r in backend.query("SELECT physical_name FROM _pipeline.table_status")}
    known |= {r[0] for r in backend.query("SELECT physical_name FROM _pipeline.backfills")}
    consumed = {t for (t, _p), o in backend.stored_offsets(group).items() if o > 0}
    needs = [n for n in needs_backfill(projections, known, consumed)
             if any(t in live for t in n.targets)]
    for need in needs:
        rows = _source_rows(settings, need)
        try:
            signal_id, topic, _offset = send_execute_snapshot(settings, need.service, (need.source_table,))
        except SnapshotSignalError as exc:
            say(f"cannot backfill {', '.join(need.targets)}: {exc}")
            continue
        backend.begin()
        try:
            for target in need.targets:
                backend.execute("INSERT INTO _pipeline.backfills (physical_name, source_table, requested_at, "
                                "signal_id, source_rows) VALUES (?, ?, now(), ?, ?)",
                                [target, need.source_table, signal_id, rows])
            backend.commit()
        except Exception:
            backend.rollback()
            raise
        of = f" ({rows:,} source rows)" if rows is not None else ""
        say(f"backfilling {', '.join(need.targets)}: new since {need.source_table} was last read; asked "
            f"{need.service}'s connector for a snapshot of it{of} via {topic}")
    return needs


def _source_rows(settings, need: BackfillNeed) -> int | None:
    from pipelines.source_db import source_row_count

    return source_row_count(settings, need.service, need.source_table)
