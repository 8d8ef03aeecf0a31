"""`reporting bench lake-soak`: how many files a DuckLake holds after streaming for a long time, with
maintenance on a schedule (issue: "the number of data files stays bounded under streaming").

No Kafka: the benchmark's change stream (`workload.orders_changes`: 20 % creates, 70 % updates, 10 %
deletes over a fixed key space) is planned by the pipeline's own planner and applied to a fresh lake by
a `DuckLakeBackend`, paced at `rate` events/s and cut like the stream cuts batches (every `linger_s`, with
all events due by then; a slower writer gets larger batches). Each batch is one DuckLake commit. A second
engine process runs `maintenance.maintain` every `maintain_every_s`, concurrently with the writer, as the
Dagster schedule would. Every `sample_every_s` the catalog's file counts (`count_files`), the Parquet files
on disk and the catalog's size are recorded. A batch refused by a maintenance commit is retried, as the
stream retries it.

At the end the live rows and their sum are compared with the state the change stream must leave.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import psutil

from pipelines.bench.common import loadavg, stamp, write_results


def _disk(data: Path) -> tuple[int, float]:
    files = [p for p in data.rglob("*.parquet") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / 1e6


def lake_soak(rate: int, minutes: float, maintain_every_s: float, linger_s: float, keys: int,
              keep_snapshots_hours: float, keep_files_hours: float, folder: Path, keep_daily_days: int = 0,
              say: Callable[[str], None] = print, sample_every_s: float = 30.0, seed: int = 7) -> Path:
    import shutil

    from pipelines.apply.ducklake_backend import DuckLakeBackend
    from pipelines.apply.runner import ducklake_target
    from pipelines.bench.apply_run import bench_parts
    from pipelines.bench.plot import plot_lake_soak
    from pipelines.bench.workload import FinalState, orders_changes
    from pipelines.cdc.events import Record
    from pipelines.ducklake.maintenance import count_files, maintain
    from pipelines.settings import Settings

    settings = Settings.load()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    import dataclasses

    target = dataclasses.replace(ducklake_target(settings, say=say), catalog=folder / "catalog.sqlite",
                                 data_path=folder / "data", log=folder / "engine.log")
    topic = "benchsoak.public.orders"
    parts = bench_parts({topic: "orders.public.orders"})
    writer = DuckLakeBackend(target)
    writer.ensure_schema(list(parts.contracts.values()))
    total = int(rate * minutes * 60)
    changes = orders_changes(total, keys, seed)
    final = FinalState()
    samples: list[dict] = []
    maintenance_runs: list[dict] = []
    halt = threading.Event()
    lock = threading.Lock()
    stats = {"events": 0, "batches": 0, "conflicts": 0, "apply_s": 0.0, "batch_sizes": []}

    def sample(t: float) -> None:
        reader = DuckLakeBackend(target, read_only=True)
        try:
            files = count_files(reader)
        finally:
            reader.close()
        on_disk, mb = _disk(target.data_path)
        with lock:
            events = stats["events"]
        row = {"t_s": round(t, 1), "events": events, "data_files": files.data_files,
               "delete_files": files.delete_files, "kept_files": files.kept_files,
               "awaiting_cleanup": files.scheduled_for_deletion, "snapshots": files.snapshots,
               "parquet_on_disk": on_disk, "parquet_mb": round(mb, 1),
               "catalog_mb": round(target.catalog.stat().st_size / 1e6, 2), "loadavg": loadavg()[0]}
        samples.append(row)
        say(f"lake-soak {t / 60:5.1f} min: {events:,} events; {files.data_files:,} data + {files.delete_files:,} "
            f"delete files current, {files.scheduled_for_deletion:,} awaiting cleanup, {on_disk:,} parquet on disk "
            f"({mb:,.0f} MB), {files.snapshots:,} snapshots, "
            f"catalog {row['catalog_mb']} MB")

    def maintainer(t0: float) -> None:
        next_at = t0 + maintain_every_s
        while not halt.wait(max(0.0, next_at - time.monotonic())):
            lake = DuckLakeBackend(target)
            try:
                started = time.monotonic()
                cpu0 = _engine_cpu(lake)
                report = maintain(lake, keep_snapshots_hours, keep_files_hours, keep_daily_days=keep_daily_days)
                maintenance_runs.append({
                    "t_s": round(started - t0, 1), "seconds": round(time.monotonic() - started, 1),
                    "engine_cpu_s": round(_engine_cpu(lake) - cpu0, 2), "conflicts": report.conflicts, "snapshots_expired": report.snapshots_expired,
                    "before": dataclasses.asdict(report.before), "after": dataclasses.asdict(report.after)})
                say(f"lake-soak maintenance at {(started - t0) / 60:.1f} min ({time.monotonic() - started:.1f}s): "
                    f"{report.before.data_files:,} → {report.after.data_files:,} data files, "
                    f"{report.before.snapshots:,} → {report.after.snapshots:,} snapshots")
            except duckdb.Error as exc:
                maintenance_runs.append({"t_s": round(time.monotonic() - t0, 1), "error": str(exc).splitlines()[0]})
                say(f"lake-soak maintenance failed: {str(exc).splitlines()[0]}")
            finally:
                lake.close()
            next_at += maintain_every_s

    proc = psutil.Process(os.getpid())
    cpu_start = proc.cpu_times()
    engine_cpu_start = _engine_cpu(writer)
    say(f"lake-soak: {rate:,} events/s for {minutes:g} min into {folder} (batch every {linger_s:g}s, "
        f"maintenance every {maintain_every_s / 60:g} min)")
    t0 = time.monotonic()
    background = threading.Thread(target=maintainer, args=(t0,), daemon=True)
    background.start()
    next_sample = t0
    offset = 0
    try:
        while offset < total:
            now = time.monotonic()
            if now >= next_sample:
                sample(now - t0)
                next_sample += sample_every_s
            due = min(total, int((now - t0) * rate))
            if due > offset:
                records = []
                for _ in range(due - offset):
                    key, value = next(changes)
                    final.feed(key, value)
                    records.append(Record(topic, 0, offset, key, value))
                    offset += 1
                batch = parts.plan(records)
                started = time.monotonic()
                for attempt in range(1, 21):
                    try:
                        writer.apply("soak", batch)  # rolls back when refused
                        break
                    except duckdb.TransactionException:  # a maintenance commit won the race: retry
                        stats["conflicts"] += 1
                        if attempt == 20:
                            raise
                with lock:
                    stats["events"] = offset
                    stats["batches"] += 1
                    stats["apply_s"] += time.monotonic() - started
                    stats["batch_sizes"].append(len(records))
            time.sleep(max(0.0, linger_s - (time.monotonic() - now)))
    finally:
        halt.set()
        background.join(timeout=600)
    elapsed = time.monotonic() - t0
    sample(elapsed)
    live, cents = (int(v) for v in writer.query(
        "SELECT count(*), CAST(round(coalesce(sum(total_amount), 0) * 100) AS BIGINT) FROM reporting.orders_v2 "
        "WHERE _deleted_at IS NULL")[0])
    expected = final.totals()
    cpu = proc.cpu_times()
    engine_cpu = _engine_cpu(writer) - engine_cpu_start
    writer.close()
    sizes = sorted(stats["batch_sizes"]) or [0]
    doc = {
        "rate_asked": rate, "minutes": minutes, "linger_s": linger_s, "keys": keys,
        "maintain_every_s": maintain_every_s, "keep_snapshots_hours": keep_snapshots_hours,
        "keep_files_hours": keep_files_hours, "keep_daily_days": keep_daily_days, "events": stats["events"], "seconds": round(elapsed, 1),
        "events_per_s": round(stats["events"] / elapsed), "batches": stats["batches"],
        "events_per_batch_p50": sizes[len(sizes) // 2], "writer_conflicts_retried": stats["conflicts"],
        "apply_seconds": round(stats["apply_s"], 1),
        "cpu_s": {"bench_process": round((cpu.user + cpu.system) - (cpu_start.user + cpu_start.system), 1),
                  "writer_engine": round(engine_cpu, 1)},
        "final": {"live_rows": live, "sum_total_cents": cents, "expected_live_rows": expected[0],
                  "expected_sum_total_cents": expected[1], "equal": (live, cents) == expected},
        "samples": samples, "maintenance": maintenance_runs, "loadavg_end": loadavg(),
    }
    at = stamp()
    path = write_results("lake-soak", doc, at=at)
    plot_lake_soak(doc, at)
    say(f"lake-soak: {stats['events']:,} events in {elapsed / 60:.1f} min ({doc['events_per_s']:,}/s); final rows "
        f"{'equal' if doc['final']['equal'] else 'DIFFERENT'} ({live:,} live); results {path}")
    return path


def _engine_cpu(lake) -> float:
    try:
        times = psutil.Process(lake.engine.proc.pid).cpu_times()
        return times.user + times.system
    except psutil.Error:
        return 0.0
