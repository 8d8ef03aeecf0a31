"""`reporting bench capacity`: how fast a group of 1, 2, 3 pipeline workers drains a backlog, and its
commit-to-visible latency at a steady rate, on the PostgreSQL backend of the cluster profile; then the
same with one Kafka node down.

Method (one run, same machine, same backlog for every configuration):

1. backlog: `reporting simulate --bulk N` (historical orders with their lines, payments, shipments,
   COPY-loaded into the services; or live traffic at `rate_ops` for `load_s` seconds with `bulk=0`)
   while no stream runs, then the change topics' ends are waited for until the connectors stop adding;
   every configuration then reads the whole change topics from the start;
2. per configuration: a fresh reporting database (`bench_cap_<n>`, on the estate's reporting
   PostgreSQL) and a fresh consumer group; `reporting stream --workers n` starts; the group's stored
   offsets (in the bench database) are sampled each second until they reach the topics' ends: **drain rate** = events / seconds
   from the first commit to the last (the steady part: start-up and group join are reported apart),
   CPU of the worker processes and of the reporting PostgreSQL per 1M events;
3. then the simulator runs at `latency_rate` for `latency_s` seconds with the group running: the
   commit-to-visible latency of those changes is `_ingested_at - _source_ts` of the rows they wrote,
   read from the contract tables of the bench database (all tables, no table named here);
4. "broker down": the same with the last Kafka node killed before the stream starts, brought back after.

On one 2-core machine every worker, broker, Connect worker and database shares the same two cores, so
the figures show the cost of the group (coordination, per-worker overhead) and that partitions are
spread, not how throughput grows with machines; docs/scaling.md turns them into a capacity model.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from pipelines.bench.common import (
    ProcessSampler,
    Say,
    drop_pg_databases,
    fresh_pg_database,
    loadavg,
    machine,
    pg_conninfo,
    reporting_bin,
    stamp,
    stop_gracefully,
    versions,
    write_results,
)
from pipelines.bench.group_offsets import GroupOffsets as Offsets
from pipelines.bench.stats import latency_summary
from pipelines.settings import REPO_ROOT, Settings


def check_capacity_estate(settings: Settings) -> None:
    """The benchmark measures a worker group: PostgreSQL backend and the cluster profile."""
    if settings.backend != "postgres":
        raise RuntimeError("bench capacity measures a worker group, which needs the PostgreSQL backend: "
                           "set reporting.backend: postgres (or REPORTING_BACKEND=postgres)")
    if settings.estate.kafka.local_cluster is None:
        raise RuntimeError("bench capacity runs on the cluster profile: declare kafka.local_cluster in the estate "
                           "file (docs/scaling.md) and `reporting stack up`")


def drain_figures(samples: Sequence[tuple[float, int]], events: int) -> dict:
    """From (seconds since start, committed events) samples: when the first commit came, when all
    `events` were committed, and the rate between (pure; unit-tested)."""
    first = next((t for t, c in samples if c > 0), None)
    done = next((t for t, c in samples if c >= events), None)
    if first is None or done is None:
        return {"first_commit_s": first, "drained_s": done, "events_per_s": None}
    base = next(c for t, c in samples if t == first)
    span = max(done - first, 1e-9)
    return {"first_commit_s": round(first, 1), "drained_s": round(done, 1),
            "events_per_s": round((events - base) / span, 1) if done > first else None}


class _Group:
    """`reporting --estate <derived> stream --workers n --group g` in its own process tree."""

    def __init__(self, estate: Path, workers: int, group: str, log: Path) -> None:
        self.cmd = [reporting_bin(), "--estate", str(estate), "stream", "--workers", str(workers), "--group", group]
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> int:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "REPORTING_ESTATE"}
        self.proc = subprocess.Popen(self.cmd, stdout=self.log.open("a"), stderr=subprocess.STDOUT,  # noqa: S603
                                     cwd=REPO_ROOT, env=env)
        return self.proc.pid

    def stop(self) -> None:
        stop_gracefully(self.proc)


def _simulate(settings: Settings, rate_ops: float, seconds: float, seed: int, log: Path, bulk: int = 0) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    what = ["--bulk", str(bulk)] if bulk else ["--rate", str(rate_ops), "--duration", str(seconds)]
    with log.open("a") as out:
        subprocess.run([reporting_bin(), "--estate", str(settings.estate.path), "simulate", *what,  # noqa: S603
                        "--seed", str(seed)], stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, check=True)


def _settled_end(offsets: Offsets, say: Say, quiet_s: float = 10.0, timeout: float = 1800.0) -> int:
    """The change topics' total end offset once the connectors stopped adding to it for `quiet_s`."""
    t0 = time.monotonic()
    last, since, said = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            end, _ = offsets.ends_and_committed()
        except Exception as exc:  # noqa: BLE001 - a loaded broker may time out once; asked again
            say(f"  offsets not read ({exc.__class__.__name__}); again")
            time.sleep(2.0)
            continue
        if end != last:
            last, since = end, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return end
        if time.monotonic() - said > 15:
            say(f"  {end:,} events in the change topics so far")
            said = time.monotonic()
        time.sleep(1.0)
    raise RuntimeError(f"the change topics kept growing for {timeout:.0f}s")


def _stored(settings: Settings, db: str, group: str, default: int) -> int:
    """Events the group has applied: the sum of its stored offsets in the bench database (the pipeline's
    authoritative positions; Kafka's committed offsets are only a hint)."""
    try:
        with psycopg.connect(pg_conninfo(settings, db), connect_timeout=5) as conn:
            row = conn.execute("SELECT coalesce(sum(next_offset), 0) FROM _pipeline.offsets WHERE consumer_group = %s",
                               (group,)).fetchone()
            return int(row[0]) if row else default
    except psycopg.Error:  # the schema is created by the workers as they start
        return default


def _wait_drained(settings: Settings, db: str, group: str, offsets: Offsets, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    target = None
    while time.monotonic() < deadline:
        try:
            target = target or offsets.ends_and_committed()[0]
        except Exception:  # noqa: BLE001 - sampled again
            time.sleep(1.0)
            continue
        if _stored(settings, db, group, 0) >= target:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the group did not apply the latency traffic within {timeout:.0f}s")


def _visible_latency(settings: Settings, db: str, since: dt.datetime, until: dt.datetime) -> dict:
    """_ingested_at - _source_ts over every contract table of the bench database (rows changed in the window)."""
    from pipelines.contract.sqltypes import is_identifier

    with psycopg.connect(pg_conninfo(settings, db)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'reporting' "
            "AND column_name IN ('_ingested_at', '_source_ts') GROUP BY table_name HAVING count(*) = 2").fetchall()]
        vals: list[float] = []
        for t in tables:
            if not is_identifier(t):
                continue
            vals += [float(r[0]) for r in conn.execute(
                f'SELECT extract(epoch FROM "_ingested_at" - "_source_ts") FROM reporting."{t}" '  # noqa: S608
                'WHERE "_source_ts" >= %s AND "_source_ts" < %s', (since, until)).fetchall()]
    return latency_summary(vals)


def _configuration(settings: Settings, at: str, workers: int, broker_down: bool, events: int, latency_rate: float,
                   latency_s: float, drain_timeout: float, seed: int, say: Say) -> dict:
    from pipelines.config.derive import derive_estate
    from pipelines.stack.manager import Stack

    name = f"{workers} worker(s)" + (", one Kafka node down" if broker_down else "")
    db = f"bench_cap_{workers}{'_bd' if broker_down else ''}"
    group = f"bench-cap-{at}-{workers}{'-bd' if broker_down else ''}"
    fresh_pg_database(settings, db)
    bench_dir = settings.state_dir / "bench"
    estate = derive_estate(settings.estate.path, bench_dir / f"capacity-{db}.yaml",
                           {"reporting.postgres.database": db, "reporting.backend": "postgres"},
                           state_dir=settings.state_dir)
    stack = Stack(settings)
    victim = stack.brokers[-1] if broker_down else None
    if victim is not None:
        victim.kill()
        say(f"  killed Kafka node {victim.node}")
    offsets = Offsets(settings, group)
    run = _Group(estate, workers, group, settings.state_dir / "logs" / "bench-capacity-stream.log")
    say(f"{name}: draining {events:,} events into {db} ...")
    t0 = time.monotonic()
    pid = run.start()
    roots = {"pipeline": pid}
    pg = stack.reporting_pg.running_pid()
    if pg:
        roots["pg_reporting"] = pg
    sampler = ProcessSampler(roots, pss=()).start()
    samples: list[tuple[float, int]] = []
    last_say = t0
    try:
        while True:
            committed = _stored(settings, db, group, samples[-1][1] if samples else 0)
            now = time.monotonic() - t0
            samples.append((round(now, 2), committed))
            if committed >= events:
                break
            if run.proc is not None and run.proc.poll() is not None:
                raise RuntimeError(f"the stream of {name} exited ({run.proc.returncode}); log: {run.log}")
            if now > drain_timeout:
                raise RuntimeError(f"{name}: not drained within {drain_timeout:.0f}s ({committed:,} of {events:,})")
            if time.monotonic() - last_say > 15:
                say(f"  {committed:,} of {events:,} committed after {now:.0f}s")
                last_say = time.monotonic()
            time.sleep(1.0)
        t_drained = time.monotonic() - t0
        drain = sampler.summary()
        figures = drain_figures(samples, events)
        say(f"  drained in {t_drained:.0f}s: {figures['events_per_s'] or 0:,.0f} ev/s after the first commit at "
            f"{figures['first_commit_s']}s")
        # steady traffic: commit-to-visible
        since = dt.datetime.now(dt.UTC)
        _simulate(settings, latency_rate, latency_s, seed, settings.state_dir / "logs" / "bench-capacity-sim.log")
        until = dt.datetime.now(dt.UTC)
        _wait_drained(settings, db, group, offsets, drain_timeout)
        latency = _visible_latency(settings, db, since, until)
        say(f"  at {latency_rate:g} ops/s: commit-to-visible p50 {latency.get('p50')} s, p99 {latency.get('p99')} s")
    finally:
        run.stop()
        whole = sampler.stop()
        offsets.close()
        if victim is not None:
            victim.start()
            say(f"  Kafka node {victim.node} back")
    drained_events = events - (samples[0][1] if samples else 0)
    per_m = {k: round(v["cpu_s"] * 1e6 / max(drained_events, 1), 1) for k, v in drain.items()}
    return {"name": name, "workers": workers, "broker_down": broker_down, "database": db, "group": group,
            "events": events, **figures, "drain_cpu": drain, "cpu_s_per_1m_events": per_m,
            "latency_rate_ops_per_s": latency_rate, "latency_s": latency_s, "visible_latency": latency,
            "processes_whole_configuration": whole, "samples": samples}


def bench_capacity(settings: Settings, workers: Sequence[int] = (1, 2, 3), bulk: int = 20_000, load_s: float = 60.0,
                   rate_ops: float = 1500.0, latency_rate: float = 500.0, latency_s: float = 20.0,
                   broker_down_workers: int | None = 2, drain_timeout: float = 900.0, seed: int = 7,
                   say: Say = print) -> Path:
    check_capacity_estate(settings)
    at = stamp()
    load_start = loadavg()
    probe = Offsets(settings, f"bench-cap-{at}-probe")
    try:
        before, _ = probe.ends_and_committed()
        log = settings.state_dir / "logs" / "bench-capacity-sim.log"
        if bulk:
            say(f"backlog: {bulk:,} historical orders bulk-loaded into the services (COPY), no stream running ...")
            _simulate(settings, 0, 0, seed, log, bulk=bulk)
        elif load_s > 0:
            say(f"backlog: the simulator at {rate_ops:g} ops/s for {load_s:.0f}s, no stream running ...")
            _simulate(settings, rate_ops, load_s, seed, log)
        else:
            say("backlog: what the change topics hold now")
        events = _settled_end(probe, say)
    finally:
        probe.close()
    say(f"  {events:,} events in the change topics ({events - before:,} from the backlog)")
    configs = [(n, False) for n in workers] + ([(broker_down_workers, True)] if broker_down_workers else [])
    runs = []
    try:
        for i, (n, down) in enumerate(configs):
            runs.append(_configuration(settings, at, n, down, events, latency_rate, latency_s, drain_timeout,
                                       seed + 1 + i, say))
    finally:
        drop_pg_databases(settings, [r["database"] for r in runs])
    lc = settings.estate.kafka.local_cluster
    doc = {"settings": {"workers": list(workers), "bulk_orders": bulk, "load_s": load_s, "rate_ops_per_s": rate_ops,
                        "latency_rate_ops_per_s": latency_rate, "latency_s": latency_s,
                        "broker_down_workers": broker_down_workers,
                        "kafka_nodes": len(settings.estate.kafka.bootstrap_servers),
                        "partitions": lc.partitions if lc else 1},
           "machine": machine(), "versions": versions(), "loadavg_start": load_start, "loadavg_end": loadavg(),
           "events": events, "runs": runs}
    path = write_results("capacity", doc, at)
    png = plot_capacity(doc, at)
    say(f"results: {path} (plot {png})")
    for r in runs:
        say(f"  {r['name']}: {r['events_per_s'] or 0:,.0f} ev/s drained, pipeline CPU "
            f"{r['cpu_s_per_1m_events'].get('pipeline')} s per 1M events, visible p50/p99 "
            f"{r['visible_latency'].get('p50')}/{r['visible_latency'].get('p99')} s")
    return path


def plot_capacity(doc: dict, at: str) -> Path:
    from pipelines.bench.plot import _plt, _save

    plt = _plt()
    runs = doc["runs"]
    labels = [r["name"].replace(", one Kafka node down", "\n1 node down") for r in runs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.bar(labels, [r["events_per_s"] or 0 for r in runs], color="#4c72b0")
    a.set_title("backlog drain rate (events/s)")
    b.bar(labels, [r["visible_latency"].get("p99") or 0 for r in runs], color="#dd8452", label="p99")
    b.bar(labels, [r["visible_latency"].get("p50") or 0 for r in runs], color="#55a868", label="p50")
    b.set_title(f"commit-to-visible at {doc['settings']['latency_rate_ops_per_s']:g} ops/s (s)")
    b.legend()
    fig.suptitle(f"worker group on PostgreSQL, {doc['settings']['kafka_nodes']} Kafka nodes, "
                 f"{doc['settings']['partitions']} partitions per change topic, {doc['events']:,} events (one run)")
    fig.tight_layout()
    return _save(fig, "capacity", at)
