"""Two `reporting stream`s side by side on the same live traffic: CPU per event and latency, A vs B.

On a shared machine the e2e ladder's figures move with other people's load from one run to the
next; two streams that consume the very same change events at the very same time, each into its own
copy of the reporting DB under its own consumer group, compare by construction. Each side is a
`reporting stream` process with its own arguments and environment (e.g. `--linger-ms 0` against the
default, or an older checkout via PYTHONPATH). Per side: process CPU per applied event (and the
reporting PostgreSQL backend serving it), CPU by stage from its status lines when it prints them,
events per batch, and Kafka → visible latency of every `orders.public.orders` record (visible = the
side's advisory group commit passing the record, written right after its reporting-DB commit).

Targets: DuckDB: copies of the stack's file; PostgreSQL: the stack's `reporting` database for side A
and a copy (`reporting_ab`, CREATE DATABASE … TEMPLATE) for side B, through an estate file copy that
names it. Both copies start with the offsets of an earlier run's group (`from_group`), so neither
re-reads the topics from the beginning.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pipelines.bench.common import (
    ProcessSampler,
    Say,
    loadavg,
    pg_conninfo,
    reporting_bin,
    stamp,
    write_results,
)
from pipelines.bench.e2e_bench import _sim_result, _simulate, parse_status_line, stage_costs
from pipelines.bench.stats import latency_summary
from pipelines.settings import REPO_ROOT, Settings

PROBE_TOPIC = "orders.public.orders"


@dataclass
class Side:
    name: str
    args: list[str]
    env: dict[str, str]
    group: str
    proc: subprocess.Popen | None = None
    log: Path | None = None
    commits: list[tuple[float, int]] = field(default_factory=list)  # (time, committed offset of PROBE_TOPIC[0])
    pg_pids: list[int] = field(default_factory=list)

    def status(self) -> dict | None:
        text = self.log.read_text(errors="replace") if self.log and self.log.exists() else ""
        for line in reversed(text.splitlines()):
            parsed = parse_status_line(line)
            if parsed:
                return parsed
        return None


def _estate_copy(settings: Settings, database: str, folder: Path) -> Path:
    """The estate file with absolute paths and another reporting PostgreSQL database."""
    import yaml

    src = settings.estate.path
    doc = yaml.safe_load(src.read_text())
    root = src.parent
    for key in ("contracts", "dbt_project"):
        doc[key] = str(root / doc[key])
    services = doc["services"]
    for svc in services.values() if isinstance(services, dict) else services:
        for key in ("connector", "projection", "schema_sql"):
            if svc.get(key):
                svc[key] = str(root / svc[key])
    doc["reporting"]["postgres"]["database"] = database
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "estate-ab.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def env_pairs(items: list[str]) -> dict[str, str]:
    """`KEY=VALUE` items (the CLI's --a-env / --b-env) as a dict; a malformed one raises ValueError naming it."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise ValueError(f"{item!r}: expected KEY=VALUE with KEY a variable name (letters, digits, _)")
        out[key] = value
    return out


def _seed_offsets(backend, from_group: str, group: str) -> None:
    if not backend.stored_offsets(from_group):
        groups = [r[0] for r in backend.query("SELECT DISTINCT consumer_group FROM _pipeline.offsets ORDER BY 1")]
        raise ValueError(f"consumer group {from_group!r} has no stored offsets in the reporting DB, so both sides "
                         f"would read every topic from the start; groups with offsets: {', '.join(groups) or 'none'}")
    backend.begin()
    backend.execute("DELETE FROM _pipeline.offsets WHERE consumer_group = ?", (group,))
    backend.execute("INSERT INTO _pipeline.offsets (consumer_group, topic, kafka_partition, next_offset, updated_at) "
                    "SELECT ?, topic, kafka_partition, next_offset, now() FROM _pipeline.offsets "
                    "WHERE consumer_group = ?", (group, from_group))
    backend.commit()


def _watch(settings: Settings, sides: list[Side], arrivals: list[tuple[int, float]], stop: threading.Event) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=20)
    tp = TopicPartition(PROBE_TOPIC, 0)
    consumer.assign([tp])
    consumer.seek_to_end(tp)
    last = 0.0
    try:
        while not stop.is_set():
            for msgs in consumer.poll(timeout_ms=20).values():
                for m in msgs:
                    arrivals.append((m.offset, m.timestamp / 1000.0))
            if time.time() - last >= 0.05:
                last = time.time()
                for side in sides:
                    offs = admin.list_group_offsets({side.group: None}).get(side.group, {})
                    o = offs.get(tp)
                    if o is not None and o.offset >= 0:
                        side.commits.append((time.time(), o.offset))
    finally:
        consumer.close()
        admin.close()


def _latencies(arrivals: list[tuple[int, float]], commits: list[tuple[float, int]], t_from: float, t_to: float) -> dict:
    out = []
    i = 0
    for offset, ts in sorted(arrivals):
        if not t_from <= ts < t_to:
            continue
        while i < len(commits) and commits[i][1] <= offset:
            i += 1
        if i < len(commits):
            out.append(max(0.0, commits[i][0] - ts))
        # commits are in time order and offsets only grow, so `i` never needs to go back
    return latency_summary(out)


def _wait_caught_up(settings: Settings, groups: list[str], say: Say, timeout: float = 600) -> None:
    from pipelines.bench.group_offsets import GroupOffsets as Offsets

    offsets = [Offsets(settings, g) for g in groups]
    try:
        t0 = time.monotonic()
        time.sleep(10)  # start-up and first assignment
        while time.monotonic() - t0 < timeout:
            lags = [e - c for e, c in (o.ends_and_committed() for o in offsets)]
            if all(lag <= 0 for lag in lags):
                return
            say(f"  catching up: lag {lags}")
            time.sleep(3)
        raise RuntimeError(f"the streams did not catch up within {timeout:.0f}s")
    finally:
        for o in offsets:
            o.close()


def _pg_backends(settings: Settings, database: str) -> list[int]:
    import psycopg

    with psycopg.connect(pg_conninfo(settings, "reporting"), autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                           "pg_backend_pid()", (database,)).fetchall()]


def bench_stream_ab(backend: str, from_group: str, a_args: list[str], b_args: list[str],
                    a_env: dict[str, str] | None = None, b_env: dict[str, str] | None = None,
                    rate_ops: float = 1000, step_s: float = 60, workers: int = 2, seed: int = 500,
                    labels: tuple[str, str] = ("A", "B"), say: Say = print) -> dict:
    settings = Settings.load().with_backend(backend)
    at = stamp()
    folder = settings.state_dir / "bench" / f"ab-{at}"
    folder.mkdir(parents=True, exist_ok=True)
    logs = settings.state_dir / "logs"
    sides = [Side(labels[0], a_args, dict(a_env or {}), f"bench-ab-{at}-a"),
             Side(labels[1], b_args, dict(b_env or {}), f"bench-ab-{at}-b")]
    base_env = {**os.environ, "REPORTING_BACKEND": backend, "COLUMNS": "400"}
    pg_dbs = []
    if backend == "duckdb":
        from pipelines.apply.duckdb_backend import DuckDbBackend

        for side in sides:
            path = folder / f"{side.group}.duckdb"
            for suffix in ("", ".wal"):
                if Path(str(settings.duckdb_path) + suffix).exists():
                    shutil.copyfile(str(settings.duckdb_path) + suffix, str(path) + suffix)
            b = DuckDbBackend(path)
            _seed_offsets(b, from_group, side.group)
            b.close()
            side.env["REPORTING_DUCKDB_PATH"] = str(path)
    else:
        from pipelines.apply.postgres_backend import PostgresBackend
        from pipelines.stack.manager import Stack

        db_b = "reporting_ab"
        pg = Stack(settings).reporting_pg
        pg.psql(f"DROP DATABASE IF EXISTS {db_b}")
        pg.psql(f"CREATE DATABASE {db_b} TEMPLATE reporting OWNER reporting_writer")
        pg_dbs = ["reporting", db_b]
        for side, db in zip(sides, pg_dbs, strict=True):
            b = PostgresBackend(pg_conninfo(settings, db))
            _seed_offsets(b, from_group, side.group)
            b.close()
        sides[1].env["REPORTING_ESTATE"] = str(_estate_copy(settings, db_b, folder))
    arrivals: list[tuple[int, float]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(settings, sides, arrivals, stop), daemon=True)
    try:
        for side in sides:
            side.log = logs / f"bench-ab-{at}-{side.name}.log"
            env = {**base_env, **side.env}
            cmd = [reporting_bin(), "stream", "--group", side.group, *side.args]
            side.proc = subprocess.Popen(cmd, stdout=side.log.open("w"), stderr=subprocess.STDOUT,  # noqa: S603
                                         cwd=REPO_ROOT, env=env)
            say(f"side {side.name}: pid {side.proc.pid}: {' '.join(cmd[1:])} {side.env}")
        _wait_caught_up(settings, [s.group for s in sides], say)  # what came since `from_group` stopped
        if pg_dbs:
            for side, db in zip(sides, pg_dbs, strict=True):
                side.pg_pids = _pg_backends(settings, db)
        watcher.start()
        time.sleep(6)  # a status line of each side before the load
        roots = {f"pipeline_{s.name}": s.proc.pid for s in sides}
        for s in sides:
            for i, pid in enumerate(s.pg_pids):
                roots[f"pg_{s.name}_{i}"] = pid
        la = loadavg()
        say(f"simulator at {rate_ops:g} ops/s for {step_s:.0f}s (load {la}) ...")
        sim_log = logs / f"bench-ab-{at}-simulate.log"
        with sim_log.open("w") as log:
            status0 = [s.status() for s in sides]
            sampler = ProcessSampler(roots, pss=()).start()
            t0 = time.time()
            sim = _simulate(rate_ops, step_s, workers, seed, log)
            sim.wait()
            t1 = time.time()
            processes = sampler.stop()
            status1 = [s.status() for s in sides]
        time.sleep(5)  # the last records become visible
    finally:
        stop.set()
        for side in sides:
            if side.proc and side.proc.poll() is None:
                side.proc.send_signal(signal.SIGINT)
        for side in sides:
            if side.proc:
                try:
                    side.proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    side.proc.kill()
        if watcher.is_alive():
            watcher.join(timeout=10)
    events_in = len([a for a in arrivals if t0 <= a[1] < t1])
    result = {}
    for side, s0, s1 in zip(sides, status0, status1, strict=True):
        stages = stage_costs(s0, s1)
        cpu = processes[f"pipeline_{side.name}"]["cpu_s"]
        pg_cpu = sum(processes[k]["cpu_s"] for k in processes if k.startswith(f"pg_{side.name}_"))
        applied = stages["events"] if stages else None
        result[side.name] = {
            "args": side.args, "env": {k: v for k, v in side.env.items() if k != "REPORTING_ESTATE"},
            "group": side.group, "pipeline_cpu_s": cpu, "reporting_pg_backend_cpu_s": pg_cpu if side.pg_pids else None,
            "stages_during_load": stages,
            "latency_kafka_to_visible_orders": _latencies(arrivals, side.commits, t0, t1),
            "peak_rss_mb": processes[f"pipeline_{side.name}"]["peak_rss_mb"],
        }
        if applied:
            result[side.name]["pipeline_cpu_us_per_event"] = round(1e6 * cpu / applied, 1)
    # sides without status lines (older code): per event from the other side's event count (same traffic)
    counted = next((r["stages_during_load"]["events"] for r in result.values() if r["stages_during_load"]), None)
    for r in result.values():
        if counted:
            r["pipeline_cpu_us_per_event_same_events"] = round(1e6 * r["pipeline_cpu_s"] / counted, 1)
            if r["reporting_pg_backend_cpu_s"] is not None:
                r["reporting_pg_cpu_us_per_event"] = round(1e6 * r["reporting_pg_backend_cpu_s"] / counted, 1)
    doc = {"settings": {"backend": backend, "rate_ops_per_s": rate_ops, "step_s": step_s, "workers": workers,
                        "from_group": from_group, "seed": seed},
           "loadavg_before": la, "simulator": _sim_result(sim_log), "orders_records_in_window": events_in,
           "wall_s": round(t1 - t0, 1), "sides": result, "processes": processes}
    path = write_results(f"stream-ab-{backend}", doc, at)
    for name, r in result.items():
        say(f"  {name}: {r.get('pipeline_cpu_us_per_event_same_events')} µs CPU per event (pipeline), PG backend "
            f"{r.get('reporting_pg_cpu_us_per_event')} µs; stages {r['stages_during_load']}; Kafka→visible "
            f"{r['latency_kafka_to_visible_orders']}")
    say(f"results: {path.relative_to(REPO_ROOT)}")
    if pg_dbs:
        from pipelines.bench.common import drop_pg_databases

        drop_pg_databases(settings, [pg_dbs[1]])
    shutil.rmtree(folder, ignore_errors=True)
    _ = psutil  # the sampler's dependency, imported here so a missing one fails before the run
    return doc
