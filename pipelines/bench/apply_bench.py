"""`reporting bench apply`: a topic pre-filled with N Debezium change events, applied from offset 0.

The topic (`bench<run>.public.orders`) is routed to the orders projection, so the real decode →
project → validate → plan → apply path runs, into a fresh reporting DB (DuckDB file or a fresh
PostgreSQL database), with a fresh consumer group. Reports events/s, peak RSS, CPU seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from pipelines.bench.workload import orders_changes
from pipelines.settings import REPO_ROOT, Settings

RESULTS_DIR = REPO_ROOT / "bench" / "results"


@dataclasses.dataclass
class ApplyBenchResult:
    backend: str
    events: int
    keys: int
    batch: int
    seconds: float
    events_per_s: float
    peak_rss_mb: float
    cpu_s: float
    rows_final: int


class _RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self._halt = threading.Event()
        self.proc = psutil.Process()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.05)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return max(self.peak, self.proc.memory_info().rss)


def prefill(settings: Settings, topic: str, events: int, keys: int, seed: int, say: Callable[[str], None]) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        if topic not in admin.list_topics():
            admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=50, batch_size=512 * 1024,
                             compression_type="lz4", acks=1)
    t0 = time.monotonic()
    for i, (k, v) in enumerate(orders_changes(events, keys, seed)):
        producer.send(topic, key=k, value=v)
        if i and i % 200_000 == 0:
            say(f"  prefill {i:,}/{events:,} ({i / (time.monotonic() - t0):,.0f}/s)")
    producer.flush()
    producer.close()
    say(f"prefilled {topic} with {events:,} events in {time.monotonic() - t0:.1f}s")


def run_apply(settings: Settings, topic: str, backend_name: str, batch: int, say: Callable[[str], None]):
    from pipelines.apply.runner import load_parts, open_backend
    from pipelines.apply.worker import Worker
    from pipelines.cdc.plan import Planner
    from pipelines.kafka.consumer import ChangeConsumer
    from pipelines.projection import load_projections

    parts = load_parts()
    orders = load_projections(REPO_ROOT / "connectors")["orders.public.orders"]
    parts.planner = Planner({topic: orders}, parts.contracts)
    parts.source_tables = {topic: orders.source_table}
    s = dataclasses.replace(settings, backend=backend_name,
                            duckdb_path=settings.state_dir / "bench" / f"{topic}.duckdb")
    if backend_name == "postgres":
        _fresh_pg_database(s, topic)
    backend = open_backend(s) if backend_name == "duckdb" else _pg_backend(s, topic)
    backend.ensure_schema(list(parts.contracts.values()))
    group = f"{topic}-{backend_name}"
    consumer = ChangeConsumer(s.kafka_bootstrap, group, [topic.split(".")[0]], lambda: backend.stored_offsets(group),
                              max_records=batch)
    sampler = _RssSampler()
    sampler.start()
    cpu0 = psutil.Process().cpu_times()
    t0 = time.monotonic()
    worker = Worker(backend, consumer, parts.plan, group, say=say, status_every=5.0)
    stats = worker.run(until_caught_up=True, install_signals=False)
    seconds = time.monotonic() - t0
    cpu1 = psutil.Process().cpu_times()
    peak = sampler.stop()
    rows = int(backend.query("SELECT count(*) FROM reporting.orders_v2")[0][0])
    consumer.close()
    backend.close()
    return stats.events, seconds, peak, (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), rows


def _fresh_pg_database(settings: Settings, name: str) -> None:
    from pipelines.stack.manager import Stack

    db = name.replace(".", "_")
    cluster = Stack(settings).reporting_pg
    cluster.psql(f"DROP DATABASE IF EXISTS {db}")
    cluster.psql(f"CREATE DATABASE {db} OWNER reporting_writer")


def _pg_backend(settings: Settings, name: str):
    from pipelines.apply.postgres_backend import PostgresBackend
    from pipelines.apply.runner import reporting_pg_conninfo

    return PostgresBackend(reporting_pg_conninfo(settings).replace("dbname=reporting", f"dbname={name.replace('.', '_')}"))


def bench_apply(events: int = 1_000_000, keys: int = 200_000, backends: tuple[str, ...] = ("duckdb", "postgres"),
                batch: int = 50_000, seed: int = 1, say: Callable[[str], None] = print) -> list[ApplyBenchResult]:
    settings = Settings.load()
    topic = f"bench{int(time.time())}.public.orders"
    prefill(settings, topic, events, keys, seed, say)
    results = []
    for b in backends:
        say(f"applying with the {b} backend (batch {batch:,}) ...")
        n, secs, peak, cpu, rows = run_apply(settings, topic, b, batch, say)
        r = ApplyBenchResult(b, n, keys, batch, round(secs, 2), round(n / secs), round(peak / 2**20, 1),
                             round(cpu, 1), rows)
        say(f"  {b}: {r.events:,} events in {r.seconds:.1f}s = {r.events_per_s:,} events/s, peak RSS "
            f"{r.peak_rss_mb} MB, CPU {r.cpu_s}s, {rows:,} rows in orders_v2")
        results.append(r)
    write_results("apply", results, {"events": events, "keys": keys, "batch": batch, "seed": seed, "topic": topic})
    return results


def machine() -> dict:
    return {"cpus": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def write_results(kind: str, results: list, settings: dict) -> Path:
    import duckdb
    import kafka

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{kind}-{stamp}.json"
    doc = {"kind": kind, "at": stamp, "machine": machine(),
           "versions": {"duckdb": duckdb.__version__, "kafka-python": kafka.__version__, "kafka": "4.3.0",
                        "debezium": "3.6.1.Final"},
           "settings": settings, "results": [dataclasses.asdict(r) for r in results]}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
