"""`reporting demo` / `make demo`: the whole pipeline, end to end, on the local stack."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console

from pipelines.output import renderable
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


def _events_in_last_ingest(settings: Settings) -> int:
    """Events the latest ingest run applied (metadata of a contract table's materialization)."""
    import dagster as dg

    from pipelines.dagster_runs import project_instance
    from pipelines.defs.ingest import contract_asset_key, live_contracts

    with project_instance(settings) as instance:
        event = instance.get_latest_materialization_event(contract_asset_key(live_contracts(settings.estate)[0]))
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    value = meta.get("events_in_run")
    return int(value.value) if isinstance(value, dg.IntMetadataValue) else 0


def run_demo(settings: Settings, duration: float, rate: float, seed: int, say: Callable[[str], None],
             console: Console) -> None:
    from estate import simulator
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

    # steps 3 and 4 run as Dagster jobs in the project's instance, so `reporting ui` shows these runs,
    # the contract tables' and marts' materializations and their checks
    from pipelines.dagster_runs import run_job
    from pipelines.defs.jobs import DBT_JOB, INGEST_JOB

    say(f"[bold]3/5 pipeline[/]: Dagster {INGEST_JOB} until caught up")
    quiet_rounds, deadline = 0, time.monotonic() + 300
    while quiet_rounds < 2 and time.monotonic() < deadline:
        if not run_job(settings, INGEST_JOB, say=say):
            raise RuntimeError(f"{INGEST_JOB} failed: `reporting ui` shows the run and its logs")
        quiet_rounds = quiet_rounds + 1 if _events_in_last_ingest(settings) == 0 else 0
        time.sleep(2)

    say(f"[bold]4/5 dbt[/]: Dagster {DBT_JOB}")
    if not run_job(settings, DBT_JOB, say=say):
        raise RuntimeError(f"{DBT_JOB} failed: `reporting ui` shows the run and its logs")

    say("[bold]5/5 report[/]")
    console.print(renderable(["contract_table", "live_rows", "soft_deleted"], _contract_counts(settings),
                             title="reporting.* (the public contract)"))
    print_mart(settings, console)


def print_mart(settings: Settings, console: Console) -> None:
    from pipelines.apply.runner import open_backend

    backend = open_backend(settings)
    try:
        rows = backend.query("SELECT * FROM marts.fct_daily_revenue ORDER BY 1 DESC, 2 LIMIT 10")
        cols = [d for d in _columns(backend, "marts", "fct_daily_revenue")]
    finally:
        backend.close()
    console.print(renderable(cols, rows, title="marts.fct_daily_revenue (latest days)"))


def _columns(backend, schema: str, table: str) -> list[str]:
    rows = backend.query("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                         "AND table_name = ? ORDER BY ordinal_position", (schema, table))
    return [r[0] for r in rows]
