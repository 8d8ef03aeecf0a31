"""Rich output of a reconciliation, and the one-call entry point for `reporting reconcile`."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from pipelines.reconcile.diff import KINDS, TableReconciliation

__all__ = ["reconcile_command", "render"]

_STYLE = {"ok": "green", "differences": "bold red", "error": "bold red", "skipped": "yellow"}


def _summary(results: Sequence[TableReconciliation]) -> Table:
    table = Table(title="Reconciliation: contract tables vs. their sources", title_justify="left")
    table.add_column("table")
    table.add_column("source")
    for name in ("source rows", "reporting rows", *KINDS, "seconds"):
        table.add_column(name, justify="right")
    table.add_column("status")
    for r in results:
        if r.error is not None or r.skipped is not None:
            table.add_row(r.table, r.source_table, *[""] * 7, Text(r.status, style=_STYLE[r.status]))
            continue
        counts = [Text(f"{getattr(r, k):,}", style="bold red" if getattr(r, k) else "") for k in KINDS]
        table.add_row(r.table, r.source_table, f"{r.source_rows:,}", f"{r.reporting_rows:,}", *counts,
                      f"{r.seconds:.1f}", Text(r.status, style=_STYLE[r.status]))
    return table


def _details(r: TableReconciliation) -> list[RenderableType]:
    out: list[RenderableType] = []
    if r.error is not None:
        out.append(Text.assemble((f"{r.table}: ", "bold"), (r.error, "red")))
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


def reconcile_command(settings, tables: list[str] | None = None, show: int = 10, console: Console | None = None) -> int:
    """Run `reporting reconcile [--table T ...] [--show N]`: print the report, return the exit code
    (0 no difference, 1 differences, 2 could not reconcile)."""
    from pipelines.reconcile.run import ReconcileError, exit_code, reconcile

    console = console or Console(soft_wrap=True, highlight=False)
    try:
        results = reconcile(settings, tables or None, show)
    except ReconcileError as exc:
        Console(stderr=True, soft_wrap=True, highlight=False).print(Text(f"error: {exc}", style="bold red"))
        return 2
    console.print(render(results))
    return exit_code(results)
