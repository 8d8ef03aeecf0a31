"""`reporting contract ...`: check, publish, diff and docs for the reporting contracts.

Exit codes: 0 ok (compatible or no changes), 1 a breaking change (or publish refused),
2 invalid input (a contract or the lock cannot be read; one line naming file:line).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from pipelines.contract.compat import Change, diff
from pipelines.contract.docs import render_catalog
from pipelines.contract.lock import PublishRefused, check, lock_path, publish
from pipelines.contract.model import ContractError, load_any, load_contracts

EXIT_OK, EXIT_BREAKING, EXIT_INVALID = 0, 1, 2

app = typer.Typer(
    name="contract",
    help="The reporting contract (reporting_schema/): compatibility check, publish, diff, docs.",
    no_args_is_help=True,
    add_completion=False,
)

RootOption = Annotated[
    Path | None, typer.Option("--root", help="Contract folder (default: the estate file's `contracts`).")
]

HOOKS: dict[str, Callable] = {}
"""Set by the `reporting` command (an edge): `root` → the estate's contract folder; `estate_check` →
problems between the estate's projections and these contracts (one line each)."""


def _root(root: Path | None) -> Path | None:
    return root if root is not None or "root" not in HOOKS else HOOKS["root"]()
TodayOption = Annotated[
    dt.datetime | None,
    typer.Option("--today", formats=["%Y-%m-%d"], help="Date used to judge retirements (default: today)."),
]


def _out() -> Console:
    return Console(soft_wrap=True, highlight=False)


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def _invalid(exc: ContractError) -> typer.Exit:
    _err().print(Text(f"error: {exc}", style="bold red"))
    return typer.Exit(EXIT_INVALID)


def _print_changes(changes: list[Change]) -> None:
    console = _out()
    for c in changes:
        style = "bold red" if c.breaking else "green"
        line = Text.assemble((f"{c.verdict.value.upper():<10}", style), (f" {c.rule:<26}", "cyan"), f" {c.message}")
        console.print(line)
    breaking = sum(c.breaking for c in changes)
    console.print(Text(f"{len(changes)} change(s), {breaking} breaking", style="bold red" if breaking else "bold"))


@app.command("check")
def check_cmd(root: RootOption = None, today: TodayOption = None) -> None:
    """Compare the working tree with contracts.lock; exit 1 on any breaking change inside a major."""
    try:
        of_estate = root is None  # the estate's own contracts: check its projections against them too
        root = _root(root)
        changes = check(root, today=today.date() if today else None)
    except ContractError as exc:
        raise _invalid(exc) from exc
    problems = HOOKS["estate_check"](load_contracts(root)) if of_estate and "estate_check" in HOOKS else []
    for problem in problems:
        _err().print(Text(f"error: {problem}", style="bold red"))
    if problems:
        raise typer.Exit(EXIT_INVALID)
    if not changes:
        _out().print(Text(f"contracts match {lock_path(root).name}: nothing to publish", style="green"))
        return
    _print_changes(changes)
    if any(c.breaking for c in changes):
        _err().print(Text("breaking change inside a published major: revert it or publish a new major version "
                          "(copy v<N>.yaml to v<N+1>.yaml)", style="bold red"))
        raise typer.Exit(EXIT_BREAKING)
    _out().print("compatible changes not yet published: run `reporting contract publish`")


@app.command("publish")
def publish_cmd(root: RootOption = None, today: TodayOption = None) -> None:
    """Write contracts.lock from the working tree; refused (exit 1) when a change is breaking."""
    try:
        root = _root(root)
        changes = publish(root, today=today.date() if today else None)
    except ContractError as exc:
        raise _invalid(exc) from exc
    except PublishRefused as exc:
        _print_changes(exc.changes)
        _err().print(Text(str(exc), style="bold red"))
        raise typer.Exit(EXIT_BREAKING) from exc
    if changes:
        _print_changes(changes)
    _out().print(Text(f"published {lock_path(root)}", style="green"))


@app.command("diff")
def diff_cmd(
    old: Annotated[Path, typer.Argument(help="Old contract file (YAML, may hold several documents) or folder.")],
    new: Annotated[Path, typer.Argument(help="New contract file or folder.")],
    today: TodayOption = None,
) -> None:
    """Print every change from OLD to NEW with its verdict and rule; exit 1 if any is breaking.

    Any valid ODCS v3 contract is accepted (ours or written by others). Given two files, a table's
    old and new majors (e.g. orders/v1.yaml and orders/v2.yaml) are compared column by column.
    """
    try:
        changes = diff(load_any(old), load_any(new), today=today.date() if today else None,
                       across_majors=old.is_file() and new.is_file())
    except ContractError as exc:
        raise _invalid(exc) from exc
    _print_changes(changes)
    if any(c.breaking for c in changes):
        raise typer.Exit(EXIT_BREAKING)


@app.command("docs")
def docs_cmd(
    root: RootOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the Markdown catalog here (default: stdout).")] = None,
) -> None:
    """Render the Markdown catalog of the contracts for BI users."""
    try:
        text = render_catalog(load_contracts(_root(root)))
    except ContractError as exc:
        raise _invalid(exc) from exc
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    _out().print(Text(f"wrote {out}", style="green"))
