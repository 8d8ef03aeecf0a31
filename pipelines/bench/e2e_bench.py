"""`reporting bench e2e`: the simulator at increasing rates with `reporting stream` running.

Per step (one rate of business operations/s for `step_s` seconds, `reporting simulate` in its own
process):
- offered load: change events/s into Kafka (growth of the end offsets of every change topic);
- applied: events/s the pipeline committed (growth of its consumer group's committed offsets, which
  the worker writes right after each reporting-DB commit);
- lag (end - committed) every second → sustained or not (stats.sustained: no growth over the
  second half of the step, small at the end), and how long the backlog takes to drain afterwards;
- latency, source commit → visible in reporting.orders_v2, from probes: dedicated orders (created
  once, channel "probe") updated `probe_hz` times a second with a unique modified_ts; the commit
  time is taken when COMMIT returns; "visible" when a poll of reporting.orders_v2 (PostgreSQL
  backend, every 50 ms) shows the new updated_at, or, for DuckDB (whose file the stream locks), when
  the group's committed offset passes the probe's record. A Kafka consumer on orders.public.orders
  sees each probe's record arrive, splitting the latency into commit → in Kafka (Debezium source,
  Connect) and in Kafka → visible (pipeline: poll, decode, project, apply, commit);
- per-process CPU and RSS: pipeline, Connect, Kafka, each database, the simulator.
Then a "source only" step: the stream is stopped and the simulator runs flat out, which measures what
the Debezium source connectors alone deliver into Kafka on this machine; the stream is restarted and
its catch-up rate on that real mixed backlog is measured too.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import psycopg

from pipelines.bench.common import (
    ProcessSampler,
    Say,
    loadavg,
    reporting_bin,
    stack_processes,
    stamp,
    stop_gracefully,
    write_results,
)
from pipelines.bench.compare import _us
from pipelines.bench.group_offsets import GroupOffsets as Offsets
from pipelines.bench.stats import latency_summary, rate, sustained
from pipelines.settings import REPO_ROOT, Settings

GROUP = "reporting-pipeline"
"""Default group; each e2e run uses its own (`bench-e2e-<stamp>`): Kafka's committed offsets are only
the pipeline's advisory hint, shared by every backend that ran under one group name, so a reused
group would show a fresh reporting DB as caught up while it re-reads everything."""
PROBE_CHANNEL = "bench-probe"


@dataclass
class Probe:
    order_id: int
    modified_us: int
    committed: float  # time.time() when COMMIT returned
    in_kafka: float | None = None
    offset: int | None = None
    visible: float | None = None


@dataclass
class _Watch:
    """Everything sampled once a second during a step."""

    ends: list[tuple[float, int]] = field(default_factory=list)
    committed: list[tuple[float, int]] = field(default_factory=list)
    lag: list[tuple[float, int]] = field(default_factory=list)


class Probes:
    """Probe orders in the orders service DB, their updates, and their arrival in Kafka and the target."""

    def __init__(self, settings: Settings, backend: str, n: int = 20, group: str = GROUP) -> None:
        from pipelines.stack.bootstrap import service_urls
        from pipelines.stack.manager import Stack

        self.settings = settings
        self.backend = backend
        self.group = group
        url = service_urls(Stack(settings), driver=False)["orders"]
        self.src = psycopg.connect(url, autocommit=True)
        rows = self.src.execute("SELECT id FROM orders WHERE metadata->>'channel' = %s ORDER BY id",
                                (PROBE_CHANNEL,)).fetchall()
        ids = [r[0] for r in rows]
        while len(ids) < n:
            ids.append(self.src.execute(
                "INSERT INTO orders (customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts,"
                " terms_snapshot, metadata) VALUES (1, 10, 100, 'eur', now(), now(), 'bench probe', %s) RETURNING id",
                (orjson.dumps({"channel": PROBE_CHANNEL}).decode(),)).fetchone()[0])
        self.ids = ids[:n]
        self.keys = {orjson.dumps({"id": i}): i for i in self.ids}
        self.pending: dict[tuple[int, int], Probe] = {}
        self.done: list[Probe] = []
        self.lock = threading.Lock()
        self._halt = threading.Event()
        self._halt_writer = threading.Event()
        self._threads: list[threading.Thread] = []
        self.hz = 5.0
        self._next = 0

    # -- writers and watchers ---------------------------------------------------------------
    def update_once(self) -> None:
        oid = self.ids[self._next % len(self.ids)]
        self._next += 1
        ts = dt.datetime.now(dt.UTC)
        self.src.execute("UPDATE orders SET modified_ts = %s, total_cents = total_cents + 1 WHERE id = %s", (ts, oid))
        p = Probe(oid, _us(ts), time.time())
        with self.lock:
            self.pending[(oid, p.modified_us)] = p

    def _writer(self) -> None:
        nxt = time.monotonic()
        while not self._halt_writer.is_set():
            self.update_once()
            nxt += 1.0 / self.hz
            self._halt_writer.wait(max(0.0, nxt - time.monotonic()))

    def _kafka_watch(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False,
                                 group_id=None, fetch_max_wait_ms=50)
        tp = TopicPartition("orders.public.orders", 0)
        consumer.assign([tp])
        consumer.seek_to_end(tp)
        try:
            while not self._halt.is_set():
                for msgs in consumer.poll(timeout_ms=100).values():
                    for m in msgs:
                        oid = self.keys.get(m.key)
                        if oid is None or m.value is None:
                            continue
                        after = orjson.loads(m.value).get("after") or {}
                        key = (oid, _us(after.get("modified_ts"))) if after.get("modified_ts") else None
                        with self.lock:
                            p = self.pending.get(key) if key else None
                            if p is not None and p.in_kafka is None:
                                p.in_kafka = m.timestamp / 1000.0
                                p.offset = m.offset
        finally:
            consumer.close()

    def _visible_watch(self) -> None:
        if self.backend == "postgres":
            from pipelines.bench.common import pg_conninfo

            conn = psycopg.connect(pg_conninfo(self.settings, "reporting"), autocommit=True)
            try:
                while not self._halt.wait(0.05):
                    rows = conn.execute("SELECT order_id, updated_at FROM reporting.orders_v2 WHERE order_id = ANY(%s)",
                                        (self.ids,)).fetchall()
                    now = time.time()
                    seen = {(oid, _us(ts)) for oid, ts in rows}
                    self._mark(lambda k, _p, seen=seen: k in seen or self._superseded(k, seen), now)
            finally:
                conn.close()
        else:
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
            try:
                while not self._halt.wait(0.1):
                    offs = admin.list_group_offsets({self.group: None}).get(self.group, {})
                    now = time.time()
                    nxt = next((o.offset for tp, o in offs.items() if tp.topic == "orders.public.orders"), -1)
                    self._mark(lambda _k, p, nxt=nxt: p.offset is not None and nxt > p.offset, now)
            finally:
                admin.close()

    def _superseded(self, key: tuple[int, int], seen: set[tuple[int, int]]) -> bool:
        # a later update of the same probe order already visible implies this one was applied
        return any(oid == key[0] and us >= key[1] for oid, us in seen)

    def _mark(self, is_visible, now: float) -> None:
        with self.lock:
            for k, p in list(self.pending.items()):
                if is_visible(k, p):
                    p.visible = now
                    self.done.append(p)
                    del self.pending[k]

    def start(self, hz: float) -> None:
        self.hz = hz
        self._halt.clear()
        self._halt_writer.clear()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._kafka_watch, self._visible_watch)]
        for t in self._threads:
            t.start()
        time.sleep(1.0)  # watchers positioned before the first update
        w = threading.Thread(target=self._writer, daemon=True)
        w.start()
        self._threads.append(w)

    def stop_writing(self) -> None:
        """No more probe updates; the watchers go on until `stop` (so late probes are still seen)."""
        self._halt_writer.set()

    def stop(self) -> None:
        self._halt_writer.set()
        self._halt.set()
        for t in self._threads:
            t.join(timeout=10)

    def take(self, t_from: float, t_to: float) -> tuple[list[Probe], int]:
        """Probes committed in [t_from, t_to) that became visible, and how many never did (yet)."""
        with self.lock:
            got = [p for p in self.done if t_from <= p.committed < t_to]
            lost = sum(1 for p in self.pending.values() if t_from <= p.committed < t_to)
        return got, lost

    def close(self) -> None:
        self.src.close()


# --------------------------------------------------------------------------- Kafka offsets
# --------------------------------------------------------------------------- processes
_STATUS_LINE = re.compile(r"([\d,]+) events in [\d.]+s .*?; ([\d,]+) batches, CPU s poll ([\d.]+) plan ([\d.]+) "
                          r"apply ([\d.]+) status ([\d.]+) replica ([\d.]+) other ([\d.]+)")
STAGES = ("poll", "plan", "apply", "status", "replica", "other")


def parse_status_line(line: str) -> dict | None:
    """The cumulative counters of one worker status line (apply/worker.py RunStats.line), or None."""
    m = _STATUS_LINE.search(line)
    if not m:
        return None
    n = lambda g: int(g.replace(",", ""))  # noqa: E731
    return {"events": n(m.group(1)), "batches": n(m.group(2)),
            **{f"{k}_cpu": float(v) for k, v in zip(STAGES, m.groups()[2:], strict=True)}}


def stage_costs(before: dict | None, after: dict | None) -> dict | None:
    """CPU per event by stage between two status lines of one stream (µs), and events per batch."""
    if not before or not after:
        return None
    events = after["events"] - before["events"]
    batches = after["batches"] - before["batches"]
    if events <= 0:
        return None
    per = {k: round(1e6 * (after[f"{k}_cpu"] - before[f"{k}_cpu"]) / events, 1) for k in STAGES}
    return {"events": events, "batches": batches, "events_per_batch": round(events / batches, 1) if batches else None,
            "cpu_us_per_event": {**per, "sum": round(sum(per.values()), 1)}}


class Stream:
    """`reporting stream` in its own process (SIGINT finishes the current batch and exits)."""

    def __init__(self, settings: Settings, backend: str, profile: str | None = None, group: str = GROUP,
                 linger_ms: int | None = None) -> None:
        self.group = group
        self.settings = settings
        self.backend = backend
        self.profile = profile
        self.linger_ms = linger_ms  # None: the estate's pipeline.linger_ms
        self.proc: subprocess.Popen | None = None
        self.log = settings.state_dir / "logs" / "bench-stream.log"
        self._log_from = 0

    def status(self) -> dict | None:
        """The newest status line this stream process wrote (every 5 s), parsed."""
        try:
            with self.log.open("rb") as f:
                f.seek(self._log_from)
                text = f.read().decode(errors="replace")
        except OSError:
            return None
        for line in reversed(text.splitlines()):
            parsed = parse_status_line(line)
            if parsed:
                return parsed
        return None

    def start(self) -> int:
        # wide lines: the status lines are parsed (rich wraps at COLUMNS)
        env = {**os.environ, "REPORTING_BACKEND": self.backend, "COLUMNS": "400"}
        cmd = [reporting_bin(), "stream", "--group", self.group] + (["--replica-every", "0"] if self.backend == "duckdb" else [])
        if self.linger_ms is not None:
            cmd += ["--linger-ms", str(self.linger_ms)]
        if self.profile:
            cmd = [str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "cProfile", "-o", self.profile,
                   "-m", "pipelines.cli", *cmd[1:]]
            self.profile = None  # the catch-up restart of the source-only step runs unprofiled
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_from = self.log.stat().st_size if self.log.exists() else 0
        out = self.log.open("a")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)  # noqa: S603
        return self.proc.pid

    def stop(self) -> None:
        stop_gracefully(self.proc)
        self.proc = None


def _simulate(rate_ops: float, seconds: float, workers: int, seed: int, log) -> subprocess.Popen:
    return subprocess.Popen([reporting_bin(), "simulate", "--rate", str(rate_ops), "--duration", str(seconds),  # noqa: S603
                             "--workers", str(workers), "--seed", str(seed)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=os.environ.copy())


_SIM_LINE = re.compile(r"(\d[\d,]*) operations in ([\d.]+)s = ([\d,]+) ops/s")


def _sim_result(log_path) -> dict:
    text = log_path.read_text(errors="replace")
    m = list(_SIM_LINE.finditer(text))
    if not m:
        return {}
    last = m[-1]
    return {"operations": int(last.group(1).replace(",", "")), "seconds": float(last.group(2)),
            "ops_per_s": int(last.group(3).replace(",", ""))}


# --------------------------------------------------------------------------- the suite
def _watch_until(offsets: Offsets, watch: _Watch, t_base: float, stop: threading.Event, every: float = 1.0) -> None:
    while not stop.is_set():
        now = time.monotonic() - t_base
        try:
            e, c = offsets.ends_and_committed()
        except Exception:  # noqa: BLE001 - a missed sample is fine
            stop.wait(every)
            continue
        watch.ends.append((now, e))
        watch.committed.append((now, c))
        watch.lag.append((now, e - c))
        stop.wait(every)


def _wait_caught_up(offsets: Offsets, timeout: float, say: Say, settle: float = 2.0) -> float:
    t0 = time.monotonic()
    last = t0
    while time.monotonic() - t0 < timeout:
        e, c = offsets.ends_and_committed()
        if e - c <= 0:
            time.sleep(settle)
            e2, c2 = offsets.ends_and_committed()
            if e2 - c2 <= 0:
                return time.monotonic() - t0
        if time.monotonic() - last > 15:
            say(f"  waiting for the pipeline to catch up: lag {e - c:,}")
            last = time.monotonic()
        time.sleep(0.5)
    raise RuntimeError(f"pipeline did not catch up within {timeout:.0f}s")


def _latency(probes: list[Probe]) -> dict:
    vis = [p.visible - p.committed for p in probes if p.visible is not None]
    src = [p.in_kafka - p.committed for p in probes if p.in_kafka is not None]
    pipe = [p.visible - p.in_kafka for p in probes if p.in_kafka is not None and p.visible is not None]
    return {"visible": latency_summary(vis), "commit_to_kafka": latency_summary(src),
            "kafka_to_visible": latency_summary(pipe)}


def _provenance_latency(settings: Settings, since: dt.datetime, until: dt.datetime) -> dict:
    """_ingested_at - _source_ts of rows whose last change was committed in the window (PostgreSQL backend).

    _ingested_at is now() of the apply transaction, i.e. its start: a lower bound of visibility."""
    from pipelines.bench.common import pg_conninfo

    with psycopg.connect(pg_conninfo(settings, "reporting")) as conn:
        vals = [float(r[0]) for r in conn.execute(
            "SELECT extract(epoch FROM _ingested_at - _source_ts) FROM reporting.orders_v2 "
            "WHERE _source_ts >= %s AND _source_ts < %s UNION ALL "
            "SELECT extract(epoch FROM _ingested_at - _source_ts) FROM reporting.payments_v1 "
            "WHERE _source_ts >= %s AND _source_ts < %s", (since, until, since, until)).fetchall()]
    return latency_summary(vals)


def bench_e2e(rates: Sequence[float] = (250, 500, 1000, 1500, 2000), step_s: float = 60.0,
              backend: str = "postgres", workers: int = 2, probe_hz: float = 5.0, source_only: bool = True,
              drain_timeout: float = 300.0, seed: int = 100, profile: str | None = None, say: Say = print,
              linger_ms: int | None = None, kind: str = "e2e", group: str | None = None,
              write: bool = True) -> dict:
    """Run the rate ladder (ops/s of the simulator); returns the results document (also written, with
    its plot, unless `write` is False: a caller that collects several runs into one document).

    `linger_ms`: the stream's `--linger-ms` (None: the estate's pipeline.linger_ms). Every step also
    records the pipeline's CPU per applied event (process CPU, and by stage from the stream's status
    lines: poll, plan, apply, status, replica) and its events per batch. `group`: reuse a consumer
    group (and so the offsets stored under it) across runs on one backend, e.g. for a series of runs
    of one setting each; default a fresh group per run. `kind`: the results file's prefix.

    `profile`: a path; the stream then runs under cProfile (stats dumped there when it stops). A
    profiled stream is slower: use it to see where the time goes, not for the figures."""
    from pipelines.config.model import effective_linger_ms

    settings = Settings.load()
    at = stamp()
    load_start = loadavg()
    group = group or f"bench-e2e-{at}"
    stream = Stream(settings, backend, profile=profile, group=group, linger_ms=linger_ms)
    offsets = Offsets(settings, group)
    probes = Probes(settings, backend, group=group)
    steps: list[dict] = []
    sim_log_path = settings.state_dir / "logs" / "bench-simulate.log"
    try:
        stream.start()
        say(f"reporting stream ({backend}) started; catching up with what is already in the topics ...")
        _wait_caught_up(offsets, 900, say)
        for i, r in enumerate(rates):
            steps.append(_step(settings, stream, offsets, probes, r, step_s, workers, probe_hz, drain_timeout,
                               seed + i, sim_log_path, backend, say))
        if source_only:
            steps.append(_source_only_step(settings, stream, offsets, step_s, workers, seed + 99, sim_log_path,
                                           drain_timeout, say))
    finally:
        stream.stop()
        probes.stop()
        probes.close()
        offsets.close()
    pipeline_steps = [s for s in steps if s["kind"] == "pipeline"]
    ok = [s for s in pipeline_steps if s["sustained"]]
    best = max(ok, key=lambda s: s["events_per_s_offered"], default=None)
    summary = {"max_sustained_events_per_s": best["events_per_s_offered"] if best else None,
               "max_sustained_ops_per_s": best["simulator"].get("ops_per_s") if best else None,
               "source_only_events_per_s": next((s["events_per_s_offered"] for s in steps if s["kind"] == "source_only"),
                                                None)}
    if summary["max_sustained_events_per_s"] and summary["source_only_events_per_s"]:
        summary["sustained_vs_source_only"] = round(summary["max_sustained_events_per_s"]
                                                    / summary["source_only_events_per_s"], 2)
    summary["pipeline_cpu_us_per_event"] = {str(s["rate_ops_per_s"]): s.get("pipeline_cpu_us_per_event")
                                            for s in pipeline_steps}
    summary["stage_cpu_us_per_event"] = {str(s["rate_ops_per_s"]): (s.get("stages_during_load") or {}).get(
        "cpu_us_per_event") for s in pipeline_steps}
    summary["events_per_batch"] = {str(s["rate_ops_per_s"]): (s.get("stages_during_load") or {}).get(
        "events_per_batch") for s in pipeline_steps}
    doc = {"settings": {"rates_ops_per_s": list(rates), "step_s": step_s, "backend": backend, "workers": workers,
                        "group": group, "linger_ms": linger_ms if linger_ms is not None
                        else effective_linger_ms(settings.estate.pipeline.linger_ms, backend, replica_on=False),
                        "probe_hz": probe_hz, "seed": seed},
           "loadavg_start": load_start, "summary": summary, "steps": steps}
    if not write:
        return doc
    path = write_results(kind, doc, at)
    from pipelines.bench.plot import plot_e2e

    png = plot_e2e(doc, at)
    say(f"results: {path.relative_to(REPO_ROOT)}; plot {png.relative_to(REPO_ROOT)}; summary {summary}")
    return doc


def _roots(settings: Settings, extra: dict[str, int]) -> dict[str, int]:
    procs = stack_processes(settings)
    return {**{k: v for k, v in procs.items() if k in ("connect", "kafka", "pg_orders", "pg_customers", "pg_payments",
                                                        "pg_reporting", "mariadb_warehouse")}, **extra}


def _step(settings, stream, offsets, probes, rate_ops, step_s, workers, probe_hz, drain_timeout, seed, sim_log_path,
          backend, say) -> dict:
    la = loadavg()
    say(f"step {rate_ops:g} ops/s for {step_s:.0f}s (load {la}) ...")
    t_base = time.monotonic()
    watch = _Watch()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_until, args=(offsets, watch, t_base, stop), daemon=True)
    watcher.start()
    deadline = time.monotonic() + 15  # a stream started just now prints its first status line within 5 s:
    while stream.status() is None and time.monotonic() < deadline:  # the stages are counted from that line
        time.sleep(0.2)
    probes.start(probe_hz)
    wall_from = time.time()
    ts_from = dt.datetime.now(dt.UTC)
    with sim_log_path.open("w") as log:
        sim = _simulate(rate_ops, step_s, workers, seed, log)
        sampler = ProcessSampler(_roots(settings, {"pipeline": stream.proc.pid, "simulator": sim.pid})).start()
        t_sim0 = time.monotonic() - t_base
        status0 = stream.status()
        sim.wait()
        t_sim1 = time.monotonic() - t_base
        status1 = stream.status()
    wall_to = time.time()
    ts_to = dt.datetime.now(dt.UTC)
    probes.stop_writing()
    drained = None
    try:
        drained = _wait_caught_up(offsets, drain_timeout, say, settle=1.0)
    except RuntimeError:
        say("  backlog did not drain in time")
    time.sleep(1.0)  # the visibility poller's last round
    probes.stop()
    stop.set()
    watcher.join()
    processes = sampler.stop()
    during = lambda pts: [p for p in pts if t_sim0 <= p[0] <= t_sim1]  # noqa: E731
    offered = rate(during(watch.ends))
    applied = rate(during(watch.committed))
    lag_pts = during(watch.lag)
    got, lost = probes.take(wall_from, wall_to)
    lat = _latency(got)
    # the sampler's clock starts at sampler.t0, the step's at t_base: the load window in sampler time
    w0, w1 = t_sim0 - (sampler.t0 - t_base), t_sim1 - (sampler.t0 - t_base)
    cpu = {k: {"cpu_s": round(sampler.cpu_between(k, w0, w1), 1),
               "cpu_pct_of_core": round(100 * sampler.cpu_between(k, w0, w1) / max(1e-9, t_sim1 - t_sim0), 1),
               "peak_rss_mb": sampler.peak_rss_between(k, w0, w1)} for k in sampler.groups}
    step = {"kind": "pipeline", "rate_ops_per_s": rate_ops, "simulator": _sim_result(sim_log_path),
            "events_per_s_offered": round(offered), "events_per_s_applied": round(applied),
            "sustained": sustained(lag_pts, offered), "lag_end_of_load": lag_pts[-1][1] if lag_pts else None,
            "lag_max": max((p[1] for p in lag_pts), default=None),
            "drain_s_after_load": None if drained is None else round(drained, 1),
            "latency_visible": lat["visible"], "latency_commit_to_kafka": lat["commit_to_kafka"],
            "latency_kafka_to_visible": lat["kafka_to_visible"], "probes_not_visible": lost,
            "processes_during_load": cpu, "processes_whole_step": processes, "loadavg_before": la,
            "loadavg_after": loadavg(), "lag_series": [(round(t - t_sim0, 1), v) for t, v in watch.lag]}
    pipe_cpu = sampler.cpu_between("pipeline", w0, w1)
    step["pipeline_cpu_us_per_event"] = (round(1e6 * pipe_cpu / (applied * (t_sim1 - t_sim0)), 1)
                                         if applied > 0 else None)
    step["stages_during_load"] = stage_costs(status0, status1)
    if backend == "postgres":
        step["latency_provenance"] = _provenance_latency(settings, ts_from, ts_to)
        pg = sampler.cpu_between("pg_reporting", w0, w1) if "pg_reporting" in sampler.groups else None
        step["reporting_pg_cpu_us_per_event"] = (round(1e6 * pg / (applied * (t_sim1 - t_sim0)), 1)
                                                 if pg is not None and applied > 0 else None)
    say(f"  offered {offered:,.0f} ev/s ({step['simulator'].get('ops_per_s', '?')} ops/s), applied {applied:,.0f} ev/s, "
        f"sustained={step['sustained']}, lag max {step['lag_max']}, p50/p95/p99 visible "
        f"{lat['visible']['p50']}/{lat['visible']['p95']}/{lat['visible']['p99']} s (commit→Kafka p50 "
        f"{lat['commit_to_kafka']['p50']} s); pipeline CPU {cpu['pipeline']['cpu_pct_of_core']}%, Connect "
        f"{cpu['connect']['cpu_pct_of_core']}%, simulator {cpu['simulator']['cpu_pct_of_core']}%; "
        f"{step['pipeline_cpu_us_per_event']} µs CPU per event, by stage {step['stages_during_load']}")
    return step


def _source_only_step(settings, stream, offsets, step_s, workers, seed, sim_log_path, drain_timeout, say) -> dict:
    """Stream stopped: the simulator flat out; what Debezium alone puts into Kafka. Then the catch-up."""
    la = loadavg()
    say(f"source-only step: stream stopped, simulator flat out for {step_s:.0f}s (load {la}) ...")
    stream.stop()
    t_base = time.monotonic()
    watch = _Watch()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_until, args=(offsets, watch, t_base, stop), daemon=True)
    watcher.start()
    with sim_log_path.open("w") as log:
        sim = _simulate(0, step_s, workers, seed, log)
        sampler = ProcessSampler(_roots(settings, {"simulator": sim.pid})).start()
        t0 = time.monotonic() - t_base
        sim.wait()
        t1 = time.monotonic() - t_base
    # let Debezium finish what is in the WAL/binlog: end offsets stop growing
    last, stable_since = None, time.monotonic()
    while time.monotonic() - stable_since < 5 and time.monotonic() - t_base - t1 < drain_timeout:
        e, _ = offsets.ends_and_committed()
        if e != last:
            last, stable_since = e, time.monotonic()
        time.sleep(0.5)
    t_src_done = time.monotonic() - t_base - 5
    processes = sampler.stop()
    offered = rate([p for p in watch.ends if t0 <= p[0] <= t1])
    total_in = rate([p for p in watch.ends if t0 <= p[0] <= t_src_done]) if t_src_done > t0 else offered
    backlog = watch.lag[-1][1] if watch.lag else 0
    say(f"  Debezium alone: {offered:,.0f} ev/s into Kafka during load ({total_in:,.0f} incl. its tail); "
        f"backlog for the pipeline {backlog:,}; catching up ...")
    stream.start()
    t_c0 = time.monotonic()
    pipe_sampler = ProcessSampler({"pipeline": stream.proc.pid}).start()
    catch_up = _wait_caught_up(offsets, drain_timeout * 4, say, settle=0.0)
    pipe = pipe_sampler.stop()
    stop.set()
    watcher.join()
    catch_rate = backlog / catch_up if catch_up else None
    say(f"  pipeline catch-up: {backlog:,} events in {catch_up:.1f}s = {catch_rate:,.0f} ev/s "
        f"(incl. start-up {time.monotonic() - t_c0 - catch_up:.1f}s excluded)")
    return {"kind": "source_only", "rate_ops_per_s": 0, "simulator": _sim_result(sim_log_path),
            "events_per_s_offered": round(offered), "events_per_s_source_incl_tail": round(total_in),
            "source_tail_s": round(t_src_done - t1, 1), "backlog_events": backlog,
            "catch_up_s": round(catch_up, 1), "catch_up_events_per_s": round(catch_rate) if catch_rate else None,
            "catch_up_pipeline": pipe["pipeline"], "processes": processes, "loadavg_before": la,
            "loadavg_after": loadavg()}
