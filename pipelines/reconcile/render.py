"""Output of a reconciliation (rich for people, csv/json records for programs), and the one-call entry
point for `reporting reconcile`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.text import Text

from pipelines.output import Format, Section, View, make_console, renderable, write_tables
from pipelines.reconcile.diff import KINDS, TableReconciliation

__all__ = ["reconcile_command", "records", "render"]

_STYLE = {"ok": "green", "differences": "bold red", "error": "bold red", "skipped": "yellow"}

TABLE_COLUMNS = ("table", "source_table", "status", "source_rows", "reporting_rows", *KINDS, "differences",
                 "seconds", "error", "skipped")
DIFFERENCE_COLUMNS = ("table", "kind", "key", "columns", "reason")


def _table_rows(results: Sequence[TableReconciliation]) -> list[tuple]:
    rows = []
    for r in results:
        compared = r.error is None and r.skipped is None
        counts = [getattr(r, k) if compared else None for k in KINDS]
        rows.append((r.table, r.source_table, r.status, r.source_rows if compared else None,
                     r.reporting_rows if compared else None, *counts, r.differences if compared else None,
                     round(r.seconds, 3) if compared else None, r.error, r.skipped))
    return rows


def records(results: Sequence[TableReconciliation]) -> dict[str, Section]:
    """`tables`: one record per contract table (counts complete); `differences`: one per sampled difference,
    its key as {column: value} and, for different rows, the columns with expected and stored values."""
    differences = []
    for r in results:
        for kind in KINDS:
            for d in r.samples(kind):
                differences.append((r.table, kind, dict(d.key),
                                    [{"column": c.column, "expected": c.expected, "stored": c.actual}
                                     for c in d.columns], d.reason or None))
    return {"tables": Section(TABLE_COLUMNS, _table_rows(results)),
            "differences": Section(DIFFERENCE_COLUMNS, differences)}


def _summary(results: Sequence[TableReconciliation]) -> RenderableType:
    """The counts table; values are never cut (narrow terminals get one block per table)."""
    kinds = len(KINDS)

    def cells(row: Sequence) -> list:
        table, source, status, source_rows, reporting_rows = row[:5]
        counts, seconds = row[5:5 + kinds], row[6 + kinds]
        return [table, source, source_rows, reporting_rows,
                *[Text("" if n is None else f"{n:,}", style="bold red" if n else "") for n in counts],
                "" if seconds is None else f"{seconds:.1f}", Text(status, style=_STYLE[status])]

    numeric = ("source rows", "reporting rows", *KINDS, "seconds")
    view = View(["table", "source", *numeric, "status"], cells, frozenset(numeric))
    return renderable(TABLE_COLUMNS, _table_rows(results), title="Reconciliation: contract tables vs. their sources",
                      view=view)


def _details(r: TableReconciliation) -> list[RenderableType]:
    out: list[RenderableType] = []
    if r.error is not None:
        out.append(Text.assemble((f"{r.table}: ", "bold"), ("could not be reconciled (see the error above)", "red")))
        return out
    if r.skipped is not None:
        out.append(Text.assemble((f"{r.table}: ", "bold"), (f"skipped, {r.skipped}", "yellow")))
        return out
    for kind in KINDS:
        count = getattr(r, kind)
        if not count:
            continue
        samples = r.samples(kind)
        shown = f" (first {len(samples)} by key)" if len(samples) < count else ""
        out.append(Text(f"{r.table}: {count:,} {kind}{shown}", style="bold"))
        for s in samples:
            line = Text(f"  {s.key_text}")
            if s.columns:
                line.append("  " + "; ".join(f"{c.column}: expected {c.expected}, stored {c.actual}"
                                             for c in s.columns), style="red")
            if s.reason:
                line.append(f"  {s.reason}", style="red")
            out.append(line)
    return out


def render(results: Sequence[TableReconciliation]) -> RenderableType:
    """A summary table (counts always), then the sampled differences per table, then a verdict line."""
    parts: list[RenderableType] = [_summary(results)]
    for r in results:
        parts += _details(r)
    compared = [r for r in results if r.status in ("ok", "differences")]
    rows = sum(r.source_rows for r in compared)
    diffs = sum(r.differences for r in compared)
    errors = sum(1 for r in results if r.error is not None)
    verdict = f"{len(compared)} table(s) compared, {rows:,} source rows, {diffs:,} difference(s)"
    if errors:
        verdict += f", {errors} table(s) could not be reconciled"
    parts.append(Text(verdict, style="bold red" if diffs or errors else "bold green"))
    return Group(*parts)


def reconcile_command(settings, tables: list[str] | None = None, show: int = 10, console: Console | None = None,
                      fmt: Format | str = Format.table, stream: TextIO | None = None,
                      err: Console | None = None) -> int:
    """Run `reporting reconcile [--table T ...] [--show N] [--format F]`: print the report (table: on
    `console`; csv/json: records on `stream`, default stdout), return the exit code (0 no difference,
    1 differences, 2 could not reconcile)."""
    from pipelines.reconcile.run import ReconcileError, exit_code, reconcile

    fmt = Format(getattr(fmt, "value", fmt))
    try:
        results = reconcile(settings, tables or None, show)
    except ReconcileError as exc:
        (err or make_console(stderr=True, soft_wrap=True)).print(Text(f"error: {exc}", style="bold red"))
        return 2
    # one `error:` line per distinct problem (a source that cannot be reached fails each of its tables
    # with the same reason), on stderr; the report keeps the per-table status
    errors = make_console(stderr=True, soft_wrap=True) if err is None else err
    for reason in dict.fromkeys(r.error for r in results if r.error is not None):
        errors.print(Text(f"error: {reason}", style="bold red"))
    if fmt is Format.table:
        (console or make_console()).print(render(results))
    else:
        write_tables(records(results), fmt, stream or sys.stdout)
    return exit_code(results)
