"""`reporting demo` / `make demo`: the whole pipeline, end to end, on the local stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipelines.settings import Settings


def _contract_counts(settings: Settings) -> list[tuple[str, int, int]]:
    from pipelines.apply.runner import open_backend
    from pipelines.contract.model import load_contracts

    backend = open_backend(settings)
    try:
        out = []
        for c in load_contracts(settings.estate.contracts):
            soft = c.delete_semantics == "soft"
            live = 'count(*) FILTER (WHERE "_deleted_at" IS NULL)' if soft else "count(*)"
            total, alive = backend.query(f'SELECT count(*), {live} FROM reporting."{c.physical_name}"')[0]
            out.append((c.physical_name, int(alive), int(total) - int(alive)))
        return out
    finally:
        backend.close()


def run_dbt(settings: Settings, say: Callable[[str], None]) -> None:
    from pipelines.defs.dbt import dbt_env

    DBT_DIR = settings.estate.dbt_project

    env = {**os.environ, **dbt_env(settings)}
    target = "postgres" if settings.backend == "postgres" else "duckdb"
    dbt = str(Path(sys.executable).with_name("dbt"))
    say(f"dbt build --target {target} ...")
    res = subprocess.run([dbt, "build", "--target", target, "--project-dir", str(DBT_DIR), "--profiles-dir",
                          str(DBT_DIR)], env=env, cwd=DBT_DIR, capture_output=True, text=True)
    summary = [ln for ln in res.stdout.splitlines() if "Done. PASS=" in ln or "ERROR" in ln]
    if res.returncode != 0:
        raise RuntimeError(f"dbt build failed: {summary[-1] if summary else res.stdout[-300:]}")
    say(summary[-1].split("|")[-1].strip() if summary else "dbt build ok")


def run_demo(settings: Settings, duration: float, rate: float, seed: int, say: Callable[[str], None],
             console: Console) -> None:
    from estate import simulator
    from pipelines.apply.runner import run_pipeline
    from pipelines.stack.bootstrap import apply_connectors, create_service_schemas, service_urls
    from pipelines.stack.manager import Stack

    stack = Stack(settings)
    say("[bold]1/5 stack up[/] (installs what is missing on first run)")
    stack.up(say=say)
    create_service_schemas(stack, say=say)
    apply_connectors(stack, say=say)

    say(f"[bold]2/5 MusicCorp traffic[/]: {rate:.0f} business operations/s for {duration:.0f}s (seed {seed})")
    report = simulator.run(service_urls(stack), rate=rate, duration=duration, seed=seed)
    say(report.summary())

    say("[bold]3/5 pipeline[/]: ingest until caught up")
    quiet_rounds, deadline = 0, time.monotonic() + 300
    while quiet_rounds < 2 and time.monotonic() < deadline:
        stats = run_pipeline(settings=settings, until_caught_up=True, say=say, install_signals=False)
        quiet_rounds = quiet_rounds + 1 if stats.events == 0 else 0
        time.sleep(2)

    say("[bold]4/5 dbt[/]")
    run_dbt(settings, say)

    say("[bold]5/5 report[/]")
    t = Table("contract table", "live rows", "soft-deleted", title="reporting.* (the public contract)")
    for name, alive, dead in _contract_counts(settings):
        t.add_row(name, f"{alive:,}", f"{dead:,}")
    console.print(t)
    print_mart(settings, console)


def print_mart(settings: Settings, console: Console) -> None:
    from pipelines.apply.runner import open_backend

    backend = open_backend(settings)
    try:
        rows = backend.query("SELECT * FROM marts.fct_daily_revenue ORDER BY 1 DESC, 2 LIMIT 10")
        cols = [d for d in _columns(backend, "marts", "fct_daily_revenue")]
    finally:
        backend.close()
    t = Table(*cols, title="marts.fct_daily_revenue (latest days)")
    for r in rows:
        t.add_row(*[str(v) for v in r])
    console.print(t)


def _columns(backend, schema: str, table: str) -> list[str]:
    rows = backend.query("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                         "AND table_name = ? ORDER BY ordinal_position", (schema, table))
    return [r[0] for r in rows]
