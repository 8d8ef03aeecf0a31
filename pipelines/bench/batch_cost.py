"""What one apply transaction costs by batch size, per backend: the fixed cost per batch vs the cost per event.

Takes real mixed estate traffic from the stack's change topics (what `bench_e2e` left there, all
services), plans batches of each size with the real planner, and times `Backend.apply` (rows,
status, offsets, commit: one transaction) into a copy of the stack's reporting DB (a DuckDB file
copied from <state>/reportingdb.duckdb, or a PostgreSQL database created from the `reporting`
template), so the contract tables have their real size. The changes were applied before, so rows are
rewritten or skipped by source position, as on redelivery; every statement still runs. The stream
must be stopped (DuckDB file lock, template database without connections).
Result: median seconds per apply for each size, and a least-squares fixed + per-event split.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Sequence

from pipelines.bench.common import Say, drop_pg_databases, loadavg, pg_conninfo, stamp, write_results
from pipelines.bench.stats import slope
from pipelines.settings import REPO_ROOT, Settings


def _records(settings: Settings, n: int) -> list:
    import re

    from kafka import KafkaConsumer, TopicPartition

    from pipelines.cdc.events import Record

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                             max_poll_records=50_000, fetch_max_bytes=64 * 1024 * 1024)
    prefixes = sorted(s.topic_prefix for s in settings.estate.services)
    pattern = re.compile(rf"^({'|'.join(map(re.escape, prefixes))})\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
    parts = [TopicPartition(t, p) for t in consumer.topics() if pattern.match(t)
             for p in consumer.partitions_for_topic(t) or []]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out: list = []
    deadline = time.monotonic() + 120
    while len(out) < n and time.monotonic() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            out.extend(Record(tp.topic, tp.partition, m.offset, m.key, m.value) for m in msgs)
    consumer.close()
    # interleave the partitions (offset order kept within each), so that a batch touches the contract
    # tables in the proportions live traffic does, as a streaming batch does
    by_part: dict = {}
    for r in out:
        by_part.setdefault((r.topic, r.partition), []).append(r)
    total = sum(len(v) for v in by_part.values())
    merged = sorted(((i / len(v), r) for v in by_part.values() for i, r in enumerate(v)), key=lambda x: x[0])
    return [r for _, r in merged][:min(n, total)]


def bench_batch_cost(sizes: Sequence[int] = (100, 250, 1000, 2500, 10000, 25000), reps: int = 5,
                     backends: Sequence[str] = ("duckdb", "postgres"), say: Say = print) -> dict:
    from pipelines.apply.duckdb_backend import DuckDbBackend
    from pipelines.apply.postgres_backend import PostgresBackend
    from pipelines.apply.runner import load_parts
    from pipelines.stack.manager import Stack

    settings = Settings.load()
    at = stamp()
    parts = load_parts(settings.estate)
    records = _records(settings, 10**9)
    say(f"{len(records):,} records of real estate traffic read")
    out: dict = {"settings": {"sizes": list(sizes), "reps": reps, "records": len(records)},
                 "loadavg_start": loadavg(), "backends": {}}
    for backend in backends:
        if backend == "ducklake":  # the estate's lake itself (a copy would keep pointing at its data path);
            # the changes were applied before, so positions make every row a no-op, as on redelivery
            from pipelines.apply.ducklake_backend import DuckLakeBackend
            from pipelines.apply.runner import ducklake_target

            be = DuckLakeBackend(ducklake_target(settings))
            rows = be.query("SELECT count(*) FROM reporting.orders_v2")[0][0]
        elif backend == "duckdb":
            copy = settings.state_dir / "bench" / f"batchcost-{at}.duckdb"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(settings.duckdb_path, copy)
            be = DuckDbBackend(copy)
            rows = be.query("SELECT count(*) FROM reporting.orders_v2")[0][0]
        else:
            db = f"batchcost_{at.replace('-', '_')}"
            Stack(settings).reporting_pg.psql(f"CREATE DATABASE {db} TEMPLATE reporting OWNER reporting_writer")
            be = PostgresBackend(pg_conninfo(settings, db))
            rows = be.query("SELECT count(*) FROM reporting.orders_v2")[0][0]
        result = {"orders_v2_rows": int(rows), "by_size": {}}
        points = []
        for size in sizes:
            times = []
            for r in range(reps):
                start = (r * len(records)) // reps
                chunk = records[start:start + size]
                batch = parts.plan(chunk)
                t0 = time.perf_counter()
                be.apply(f"batchcost-{at}", batch)
                times.append(time.perf_counter() - t0)
                points.append((len(chunk), times[-1]))
            med = statistics.median(times)
            result["by_size"][size] = {"median_s": round(med, 4), "events_per_s": round(size / med),
                                       "tables_touched": len(batch.tables)}
            say(f"  {backend}: batch {size:,}: {med * 1000:,.0f} ms per apply = {size / med:,.0f} ev/s "
                f"({len(batch.tables)} contract tables)")
        per_event = slope(points)
        fixed = statistics.median([t - per_event * n for n, t in points])
        result["fit"] = {"fixed_s_per_batch": round(fixed, 4), "per_event_us": round(per_event * 1e6, 1)}
        say(f"  {backend}: ≈ {fixed * 1000:,.0f} ms fixed per batch + {per_event * 1e6:,.1f} µs per event")
        be.close()
        if backend == "duckdb":
            for suffix in ("", ".wal"):
                if os.path.exists(str(copy) + suffix):
                    os.unlink(str(copy) + suffix)
        elif backend == "postgres":
            drop_pg_databases(settings, [db])
        out["backends"][backend] = result
    path = write_results("batch-cost", out, at)
    say(f"results: {path.relative_to(REPO_ROOT)}")
    return out
