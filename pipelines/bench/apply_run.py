"""One timed apply of a benchmark topic by our pipeline, in its own process (so its RSS and CPU are
the pipeline's alone): `python -m pipelines.bench.apply_run '<json>'` prints one JSON line.

The topic (`bench<…>.public.orders`) is routed to the orders projection, so the real decode →
project → validate → plan → apply path runs, into a fresh reporting DB (a DuckDB file or a fresh
PostgreSQL database), with a fresh consumer group, from offset 0 until caught up. With
"profile": "<path>", the run is under cProfile and the stats are dumped there (slower: profile
runs are never timed runs).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path


def bench_parts(routes: dict[str, str], targets: list[str] | None = None):
    """PipelineParts whose planner routes benchmark topics to the projections they stand for
    (module level, so planner processes can rebuild it)."""
    from pipelines.apply.runner import load_parts
    from pipelines.cdc.plan import Planner
    from pipelines.projection import load_projections
    from pipelines.settings import REPO_ROOT, Settings

    parts = load_parts(Settings.load().estate)
    projections = load_projections(REPO_ROOT / "connectors")
    chosen = {}
    for bench_topic, real in routes.items():
        proj = projections[real]
        if targets:
            proj = dataclasses.replace(proj, targets=tuple(t for t in proj.targets if t.physical_name in targets))
        chosen[bench_topic] = proj
    parts.planner = Planner(chosen, parts.contracts)
    parts.source_tables = {t: p.source_table for t, p in chosen.items()}
    parts.prefixes = {t.split(".")[0] for t in chosen}
    return parts


def bench_lake(settings, folder: Path):
    """A DuckLake in `folder` (catalog.sqlite and data/), run by the estate's DuckLake engine venv."""
    import dataclasses

    from pipelines.apply.runner import ducklake_target

    target = ducklake_target(settings)
    return dataclasses.replace(target, catalog=folder / "catalog.sqlite", data_path=folder / "data")


def run(topic: str | None, backend: str, batch: int, target: str, targets: list[str] | None = None,
        profile: str | None = None, routes: dict[str, str] | None = None,
        until_counts: dict[str, int] | None = None, planners: int = 0) -> dict:
    """Apply from offset 0 until caught up; or, with `until_counts` ({contract table: live rows}),
    stream until every listed table holds that many rows (snapshot benchmark: the topics are still
    being written while we read). `routes` maps benchmark topics to the projection topic they stand
    for (default: `topic` → orders.public.orders). `planners`: planner processes (0 = in-process)."""
    import functools

    from pipelines.apply.duckdb_backend import DuckDbBackend
    from pipelines.apply.planner_pool import PlannerPool
    from pipelines.apply.postgres_backend import PostgresBackend
    from pipelines.apply.worker import Worker
    from pipelines.bench.common import pg_conninfo
    from pipelines.kafka.consumer import ChangeConsumer
    from pipelines.settings import Settings

    settings = Settings.load()
    routes = routes or {topic: "orders.public.orders"}
    parts = bench_parts(routes, targets)
    prefixes = parts.prefixes
    pool = PlannerPool(planners, functools.partial(bench_parts, routes, targets), parts.contracts) if planners else None
    if backend == "ducklake":
        from pipelines.apply.ducklake_backend import DuckLakeBackend

        be = DuckLakeBackend(bench_lake(settings, Path(target)))
    else:
        be = DuckDbBackend(Path(target)) if backend == "duckdb" else PostgresBackend(pg_conninfo(settings, target))
    be.ensure_schema(list(parts.contracts.values()))
    group = f"bench-{Path(target).stem}"
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    t0 = time.monotonic()
    consumer = ChangeConsumer(settings.kafka_bootstrap, group, prefixes,
                              lambda: be.stored_offsets(group), max_records=batch)
    done_at: list[float] = []
    worker: Worker

    def check(applied: bool) -> None:
        if not applied or not until_counts:
            return
        for table, n in until_counts.items():
            if int(be.query(f"SELECT count(*) FROM reporting.{table} WHERE _deleted_at IS NULL")[0][0]) < n:
                return
        done_at.append(time.time())
        worker.stop()

    worker = Worker(be, consumer, parts.plan, group, say=lambda m: print(m, file=sys.stderr), status_every=10.0,
                    after_batch=check, pool=pool)
    if prof:
        prof.enable()
    stats = worker.run(until_caught_up=not until_counts, install_signals=False)
    if prof:
        prof.disable()
    t1 = time.monotonic()
    rows = int(be.query("SELECT count(*) FROM reporting.orders_v2 WHERE _deleted_at IS NULL")[0][0])
    consumer.close()
    be.close()
    if pool is not None:
        pool.close()
    if prof:
        prof.dump_stats(profile)
    active = t1 - (stats.first_records_at or t0)
    return {"backend": backend, "planners": planners, "events": stats.events, "batches": stats.batches, "rows_applied": stats.rows,
            "seconds_wall": round(t1 - t0, 2), "seconds_active": round(active, 2),
            "events_per_s": round(stats.events / max(active, 1e-9)),
            "events_per_s_wall": round(stats.events / max(t1 - t0, 1e-9)), "rows_final": rows,
            "dead_letters": stats.dead_letters,
            "stage_seconds": {"poll": round(stats.poll_s, 2), "plan": round(stats.plan_s, 2),
                              "apply": round(stats.apply_s, 2)}, "first_record_at": stats.first_records_wall,
            "done_at": done_at[0] if done_at else time.time()}


def main() -> None:
    args = json.loads(sys.argv[1])
    print(json.dumps(run(**args)))


if __name__ == "__main__":
    main()
