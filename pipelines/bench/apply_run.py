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


def run(topic: str, backend: str, batch: int, target: str, targets: list[str] | None = None,
        profile: str | None = None) -> dict:
    from pipelines.apply.duckdb_backend import DuckDbBackend
    from pipelines.apply.postgres_backend import PostgresBackend
    from pipelines.apply.runner import load_parts
    from pipelines.apply.worker import Worker
    from pipelines.bench.common import pg_conninfo
    from pipelines.cdc.plan import Planner
    from pipelines.kafka.consumer import ChangeConsumer
    from pipelines.projection import load_projections
    from pipelines.settings import REPO_ROOT, Settings

    settings = Settings.load()
    parts = load_parts()
    orders = load_projections(REPO_ROOT / "connectors")["orders.public.orders"]
    if targets:
        orders = dataclasses.replace(orders, targets=tuple(t for t in orders.targets if t.physical_name in targets))
    parts.planner = Planner({topic: orders}, parts.contracts)
    parts.source_tables = {topic: orders.source_table}
    be = DuckDbBackend(Path(target)) if backend == "duckdb" else PostgresBackend(pg_conninfo(settings, target))
    be.ensure_schema(list(parts.contracts.values()))
    group = f"{topic}-{Path(target).stem}"
    first: list[float] = []

    def plan(records):
        if not first:
            first.append(time.monotonic())
        return parts.plan(records)

    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    t0 = time.monotonic()
    consumer = ChangeConsumer(settings.kafka_bootstrap, group, [topic.split(".")[0]],
                              lambda: be.stored_offsets(group), max_records=batch)
    worker = Worker(be, consumer, plan, group, say=lambda m: print(m, file=sys.stderr), status_every=10.0)
    if prof:
        prof.enable()
    stats = worker.run(until_caught_up=True, install_signals=False)
    if prof:
        prof.disable()
    t1 = time.monotonic()
    rows = int(be.query("SELECT count(*) FROM reporting.orders_v2 WHERE _deleted_at IS NULL")[0][0])
    consumer.close()
    be.close()
    if prof:
        prof.dump_stats(profile)
    active = t1 - (first[0] if first else t0)
    return {"backend": backend, "events": stats.events, "batches": stats.batches, "rows_applied": stats.rows,
            "seconds_wall": round(t1 - t0, 2), "seconds_active": round(active, 2),
            "events_per_s": round(stats.events / max(active, 1e-9)),
            "events_per_s_wall": round(stats.events / max(t1 - t0, 1e-9)), "rows_final": rows,
            "dead_letters": stats.dead_letters}


def main() -> None:
    args = json.loads(sys.argv[1])
    print(json.dumps(run(**args)))


if __name__ == "__main__":
    main()
