"""Reconciliation: compare each contract table with its source table, projected like the pipeline does.

`reconcile(settings, tables=None, show=10) -> list[TableReconciliation]`, `render(results)`,
`exit_code(results)`, and `reconcile_command(tables, show) -> int` for `reporting reconcile`.
See docs/reconcile.md.
"""

from pipelines.reconcile.diff import ColumnDifference, RowDifference, TableReconciliation
from pipelines.reconcile.render import reconcile_command, render
from pipelines.reconcile.run import ReconcileError, exit_code, reconcile, reconcile_tables

__all__ = [
    "ColumnDifference",
    "ReconcileError",
    "RowDifference",
    "TableReconciliation",
    "exit_code",
    "reconcile",
    "reconcile_command",
    "reconcile_tables",
    "render",
]
