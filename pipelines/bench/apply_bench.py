"""`reporting bench apply` / `reporting bench peer`: one pre-filled change stream, applied by our pipeline
(PostgreSQL and DuckDB backends) and by Debezium's JDBC sink connector, side by side, repeated.

1. Pre-fill: N Debezium change events (20% c / 70% u / 10% d over K keys, workload.orders_changes)
   into `bench<ts>.public.orders` (schemaless JSON, what our pipeline reads) and the very same events
   with JsonConverter schemas into `benchs<ts>.public.orders` (what the JDBC sink needs); the expected
   final state is computed on the way.
2. Per repetition, in rotating order: our pipeline into a fresh PostgreSQL database, into a fresh
   DuckDB file (each in its own process: `apply_run`), and the JDBC sink into a fresh PostgreSQL
   database on the same cluster. Each target is then compared with the expected final state and
   with the others (same keys, same values in the common columns).
3. Results: medians over repetitions, ratios per repetition (ours / sink, same repetition),
   per-process CPU and peak RSS, load average → bench/results/apply-<stamp>.json and a PNG.

Rates are "active": events / (first record polled → last row applied) for ours, events /
(first rows visible → last row applied) for the sink (which favours the sink by one batch); wall
rates from start/registration are recorded too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

from pipelines.bench import compare
from pipelines.bench.common import (
    ProcessSampler,
    Say,
    drop_pg_databases,
    fresh_pg_database,
    loadavg,
    ours_system,
    split_system,
    stack_processes,
    stamp,
    write_results,
)
from pipelines.bench.sink import SinkSettings, fetch_sink_rows, run_sink
from pipelines.bench.stats import median, ratio, spread
from pipelines.bench.workload import FinalState, orders_changes, with_schemas
from pipelines.settings import REPO_ROOT, Settings

BEST_SINK = SinkSettings(batch_size=20000, max_poll_records=20000, reduction_buffer=True, unnest_insert=True)
"""The best JDBC sink setting found by `tune_sink` (bench/results/sink-tuning-*.json); used by default."""


def prefill(settings: Settings, tag: str, events: int, keys: int, seed: int, say: Say,
            with_schema_copy: bool = True) -> tuple[str, str, FinalState]:
    """Produce the workload into the plain and (for the JDBC sink) the schema-enabled topic; returns
    (plain, schema, state)."""
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    plain, schema = f"{tag}.public.orders", f"{tag}s.public.orders"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        existing = admin.list_topics()
        admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)
                             for t in ((plain, schema) if with_schema_copy else (plain,)) if t not in existing])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=50, batch_size=512 * 1024,
                             compression_type="lz4", acks=1, max_request_size=8 * 1024 * 1024)
    state = FinalState()
    t0 = time.monotonic()
    pairs = list(orders_changes(events, keys, seed))
    for i, (k, v) in enumerate(pairs):
        producer.send(plain, key=k, value=v)
        state.feed(k, v)
        if i and i % 250_000 == 0:
            say(f"  prefill {plain}: {i:,}/{events:,}")
    for i, (k, v) in enumerate(with_schemas(iter(pairs if with_schema_copy else []), schema)):
        producer.send(schema, key=k, value=v)
        if i and i % 250_000 == 0:
            say(f"  prefill {schema}: {i:,}/{events:,}")
    producer.flush()
    producer.close()
    say(f"prefilled {plain}{f' and {schema}' if with_schema_copy else ''} with {events:,} events each in "
        f"{time.monotonic() - t0:.0f}s; "
        f"expected final state {len(state.rows):,} live orders")
    return plain, schema, state


def run_ours(settings: Settings, topic: str, backend: str, batch: int, target: str, say: Say,
             targets: Sequence[str] | None = None, profile: str | None = None, planners: int = 0) -> dict:
    """Apply `topic` from offset 0 in a child process (`apply_run`), sampling its CPU and RSS (with
    `planners`, the planner processes are its children: CPU is summed over the tree, and both the
    largest process's and the tree's summed RSS are reported)."""
    if backend == "postgres":
        fresh_pg_database(settings, target)
    elif backend == "ducklake":  # a folder: catalog and data files (the engine process is the child's child)
        shutil.rmtree(target, ignore_errors=True)
    else:
        from pathlib import Path

        Path(target).unlink(missing_ok=True)
        Path(target + ".wal").unlink(missing_ok=True)
    args = {"topic": topic, "backend": backend, "batch": batch, "target": target,
            "targets": list(targets) if targets else None, "profile": profile, "planners": planners}
    log = settings.state_dir / "logs" / "bench-apply-run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    procs = stack_processes(settings)
    with log.open("a") as err:
        child = subprocess.Popen([sys.executable, "-m", "pipelines.bench.apply_run", json.dumps(args)],  # noqa: S603
                                 stdout=subprocess.PIPE, stderr=err, cwd=REPO_ROOT, env=os.environ.copy())
        roots = {"pipeline": child.pid, "kafka": procs["kafka"]}
        if backend == "postgres":
            roots["pg_reporting"] = procs["pg_reporting"]
        sampler = ProcessSampler(roots, interval=0.2).start()
        out, _ = child.communicate()
        processes = sampler.stop()
    if child.returncode != 0:
        raise RuntimeError(f"apply_run {backend} failed (exit {child.returncode}); see {log}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["processes"] = processes
    result["target"] = target
    tree = (f" (all {planners + 2} processes: RSS {processes['pipeline']['peak_rss_total_mb']} MB, "
            f"PSS {processes['pipeline'].get('peak_pss_total_mb')} MB)" if planners else "")
    say(f"  ours/{backend}{f' +{planners} planners' if planners else ''}: {result['events']:,} events, "
        f"{result['events_per_s']:,} ev/s active ({result['seconds_active']}s; wall {result['seconds_wall']}s), "
        f"pipeline CPU {processes['pipeline']['cpu_s']}s, peak RSS {processes['pipeline']['peak_rss_mb']} MB{tree}; "
        f"stages {result['stage_seconds']}")
    return result


def _ours_rows(settings: Settings, backend: str, target: str) -> dict:
    if backend == "ducklake":
        from pathlib import Path

        from pipelines.apply.ducklake_backend import DuckLakeBackend
        from pipelines.bench.apply_run import bench_lake

        lake = DuckLakeBackend(bench_lake(settings, Path(target)), read_only=True)
        try:
            return compare.canon_v2(lake.query(compare.V2_SELECT))
        finally:
            lake.close()
    if backend == "duckdb":
        import duckdb

        con = duckdb.connect(target, read_only=True)
        try:
            return compare.canon_v2(con.execute(compare.V2_SELECT).fetchall())
        finally:
            con.close()
    import psycopg

    from pipelines.bench.common import pg_conninfo

    with psycopg.connect(pg_conninfo(settings, target)) as conn:
        return compare.canon_v2(conn.execute(compare.V2_SELECT).fetchall())


def bench_peer(events: int = 1_000_000, keys: int = 200_000, reps: int = 3,
               backends: Sequence[str] = ("postgres", "duckdb"), sink: SinkSettings | None = BEST_SINK,
               batch: int = 20_000, seed: int = 1, say: Say = print, keep: bool = False,
               planners: Sequence[int] = (0,)) -> dict:
    """Our pipeline (each backend, each number of planner processes) and the JDBC sink (unless `sink`
    is None) on the same pre-filled stream, `reps` times; returns the results document (also written
    to bench/results/). Systems: `ours_<backend>` (in-process planning), `ours_<backend>_p<N>`."""
    settings = Settings.load()
    at = stamp()
    load_start = loadavg()
    tag = f"bench{int(time.time())}"
    plain, schema, state = prefill(settings, tag, events, keys, seed, say, with_schema_copy=sink is not None)
    expected = compare.expected_rows(state.rows)
    totals = state.totals()
    del state
    systems = [ours_system(b, n) for b in backends for n in planners] + (["jdbc_sink"] if sink else [])
    runs: list[dict] = []
    dbs: list[str] = []
    files: list[str] = []
    folders: list[str] = []
    try:
        for rep in range(reps):
            order = systems[rep % len(systems):] + systems[:rep % len(systems)]
            say(f"repetition {rep + 1}/{reps} (order: {', '.join(order)}; load {loadavg()})")
            rep_runs = {}
            for system in order:
                la = loadavg()
                if system == "jdbc_sink":
                    db = f"{tag}_sink_r{rep}"
                    dbs.append(db)
                    r = asdict(run_sink(settings, schema, db, sink, totals, events, say))
                    say(f"  jdbc sink [{sink.label()}]: {r['events_per_s']:,} ev/s active ({r['seconds_active']}s;"
                        f" wall {r['seconds_wall']}s), Connect CPU {r['processes']['connect']['cpu_s']}s")
                    rows = compare.canon_private(fetch_sink_rows(settings, db))
                else:
                    base, n_planners = split_system(system)
                    backend, pn = base.removeprefix("ours_"), n_planners or ""
                    if backend == "postgres":
                        target = f"{tag}_pg{pn}_r{rep}"
                        dbs.append(target)
                    elif backend == "ducklake":
                        target = str(settings.state_dir / "bench" / f"{tag}_lake{pn}_r{rep}")
                        folders.append(target)
                    else:
                        target = str(settings.state_dir / "bench" / f"{tag}_duck{pn}_r{rep}.duckdb")
                        files.append(target)
                    r = run_ours(settings, plain, backend, batch, target, say, planners=n_planners)
                    rows = _ours_rows(settings, backend, target)
                r["check_vs_expected"] = compare.diff(expected, rows)
                r["loadavg_before"] = la
                r["system"] = system
                r["rep"] = rep
                if not r["check_vs_expected"]["identical"]:
                    say(f"  [red]{system}: rows differ from the expected final state: "
                        f"{json.dumps(r['check_vs_expected'], default=str)[:400]}[/]")
                rep_runs[system] = (r, rows)
                runs.append(r)
            if "ours_postgres" in rep_runs and "jdbc_sink" in rep_runs:
                d = compare.diff(rep_runs["ours_postgres"][1], rep_runs["jdbc_sink"][1])
                runs[-1]["check_ours_pg_vs_sink"] = {k: v for k, v in d.items() if k != "examples"} | {
                    "examples": d["examples"][:3]}
                say(f"  ours (PostgreSQL) vs JDBC sink: identical={d['identical']} ({d['rows_a']:,} vs {d['rows_b']:,}"
                    f" rows, {d['different']} differ)")
            rep_runs.clear()
    finally:
        if not keep:
            drop_pg_databases(settings, dbs)
            for f in files:
                for suffix in ("", ".wal"):
                    try:
                        os.unlink(f + suffix)
                    except FileNotFoundError:
                        pass
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
    summary = summarize_peer(runs, systems)
    doc = {"settings": {"events": events, "keys": keys, "reps": reps, "batch": batch, "seed": seed,
                        "planners": list(planners),
                        "topics": [plain, schema] if sink else [plain], "sink": asdict(sink) if sink else None,
                        "sink_label": sink.label() if sink else None,
                        "expected_live_rows": totals[0], "rate_definition": "events / (first data → done)"},
           "loadavg_start": load_start, "summary": summary, "runs": runs}
    path = write_results("apply", doc, at)
    from pipelines.bench.plot import plot_apply

    png = plot_apply(doc, at)
    say(f"results: {path.relative_to(REPO_ROOT)}; plot {png.relative_to(REPO_ROOT)}")
    for line in summary_lines(summary):
        say(line)
    return doc


def summarize_peer(runs: list[dict], systems: Sequence[str]) -> dict:
    out: dict = {"events_per_s": {}, "events_per_s_wall": {}, "pipeline_or_connect_cpu_s": {}, "peak_rss_mb": {},
                 "ratios": {}, "all_identical": all(r["check_vs_expected"]["identical"] for r in runs)}
    for s in systems:
        mine = [r for r in runs if r["system"] == s]
        proc = "connect" if s == "jdbc_sink" else "pipeline"
        out["events_per_s"][s] = spread([r["events_per_s"] for r in mine])
        out["events_per_s_wall"][s] = spread([r["events_per_s_wall"] for r in mine])
        out["pipeline_or_connect_cpu_s"][s] = spread([r["processes"][proc]["cpu_s"] for r in mine])
        out["peak_rss_mb"][s] = spread([r["processes"][proc]["peak_rss_mb"] for r in mine])
        out.setdefault("peak_rss_total_mb", {})[s] = spread([r["processes"][proc]["peak_rss_total_mb"] for r in mine])
        if proc == "pipeline":
            out.setdefault("peak_pss_total_mb", {})[s] = spread([r["processes"][proc]["peak_pss_total_mb"] for r in mine])
        cpu_rates = [r["events"] / r["processes"][proc]["cpu_s"] for r in mine if r["processes"][proc]["cpu_s"]]
        out.setdefault("events_per_cpu_s", {})[s] = spread(cpu_rates)
    if "jdbc_sink" in systems:
        for s in systems:
            if s == "jdbc_sink":
                continue
            per_rep = []
            for rep in sorted({r["rep"] for r in runs}):
                a = next((r for r in runs if r["rep"] == rep and r["system"] == s), None)
                b = next((r for r in runs if r["rep"] == rep and r["system"] == "jdbc_sink"), None)
                if a and b:
                    per_rep.append(ratio(a["events_per_s"], b["events_per_s"]))
            out["ratios"][f"{s}/jdbc_sink"] = {"per_rep": [round(x, 2) for x in per_rep if x],
                                               "median": round(median([x for x in per_rep if x]) or 0, 2)}
    return out


def summary_lines(summary: dict) -> list[str]:
    lines = []
    for s, sp in summary["events_per_s"].items():
        lines.append(f"{s}: median {sp['median']:,.0f} ev/s (min {sp['min']:,.0f}, max {sp['max']:,.0f}, n={sp['n']});"
                     f" peak RSS {summary['peak_rss_mb'][s]['median']} MB")
    for k, v in summary["ratios"].items():
        lines.append(f"{k}: median ratio {v['median']}× (per repetition {v['per_rep']})")
    lines.append(f"all targets identical to the expected final state: {summary['all_identical']}")
    return lines


def tune_sink(events: int = 200_000, keys: int = 40_000, candidates: Sequence[SinkSettings] | None = None,
              reps: int = 1, seed: int = 1, say: Say = print) -> dict:
    """Try JDBC sink settings on one pre-filled stream; writes bench/results/sink-tuning-<stamp>.json."""
    settings = Settings.load()
    at = stamp()
    load_start = loadavg()
    tag = f"tune{int(time.time())}"
    _plain, schema, state = prefill(settings, tag, events, keys, seed, say)
    totals = state.totals()
    del state
    candidates = list(candidates or default_candidates())
    runs = []
    dbs = []
    try:
        for rep in range(reps):
            for i, cand in enumerate(candidates):
                db = f"{tag}_c{i}_r{rep}"
                dbs.append(db)
                la = loadavg()
                try:
                    r = asdict(run_sink(settings, schema, db, cand, totals, events, say))
                except RuntimeError as exc:
                    say(f"  [{cand.label()}]: FAILED: {exc}")
                    runs.append({"settings_label": cand.label(), "candidate": asdict(cand), "rep": rep,
                                 "failed": str(exc), "loadavg_before": la})
                    continue
                r.update({"candidate": asdict(cand), "rep": rep, "loadavg_before": la})
                say(f"  [{cand.label()}]: {r['events_per_s']:,} ev/s active, {r['events_per_s_wall']:,} wall, "
                    f"Connect CPU {r['processes']['connect']['cpu_s']}s")
                runs.append(r)
                drop_pg_databases(settings, [db])
    finally:
        drop_pg_databases(settings, dbs)
    by_label: dict[str, list[float]] = {}
    for r in runs:
        if "failed" not in r:
            by_label.setdefault(r["settings_label"], []).append(r["events_per_s"])
    table = {k: spread(v) for k, v in by_label.items()}
    best = max(table, key=lambda k: table[k]["median"])
    doc = {"settings": {"events": events, "keys": keys, "reps": reps, "seed": seed, "topic": schema},
           "loadavg_start": load_start, "summary": {"events_per_s": table, "best": best}, "runs": runs}
    path = write_results("sink-tuning", doc, at)
    say(f"best JDBC sink setting: {best} ({table[best]['median']:,.0f} ev/s); results {path.relative_to(REPO_ROOT)}")
    return doc


def default_candidates() -> list[SinkSettings]:
    return [
        SinkSettings(),  # the connector's defaults: batch.size 500, max.poll.records 500
        SinkSettings(batch_size=2000, max_poll_records=2000),
        SinkSettings(batch_size=5000, max_poll_records=5000),
        # reWriteBatchedInserts without the reduction buffer fails: two upserts of one key in a rewritten
        # multi-row INSERT → "ON CONFLICT DO UPDATE command cannot affect row a second time"
        SinkSettings(batch_size=5000, max_poll_records=5000, rewrite_batched=True),
        SinkSettings(batch_size=2000, max_poll_records=2000, reduction_buffer=True),
        SinkSettings(batch_size=5000, max_poll_records=5000, reduction_buffer=True),
        SinkSettings(batch_size=5000, max_poll_records=5000, reduction_buffer=True, rewrite_batched=True),
        SinkSettings(batch_size=5000, max_poll_records=5000, reduction_buffer=True, unnest_insert=True),
        SinkSettings(batch_size=20000, max_poll_records=20000, reduction_buffer=True, unnest_insert=True),
    ]


def bench_apply(events: int = 1_000_000, keys: int = 200_000, backends: tuple[str, ...] = ("duckdb", "postgres"),
                batch: int = 20_000, seed: int = 1, say: Say = print, planners: Sequence[int] = (0,),
                reps: int = 1) -> dict:
    """The `reporting bench apply` entry point: our backends only (no JDBC sink)."""
    return bench_peer(events=events, keys=keys, reps=reps, backends=backends, sink=None, batch=batch, seed=seed,
                      say=say, planners=planners)


def profile_ours(events: int = 200_000, keys: int = 40_000, backends: Sequence[str] = ("postgres", "duckdb"),
                 batch: int = 20_000, seed: int = 1, top: int = 25, say: Say = print) -> dict:
    """cProfile of our pipeline applying a pre-filled stream (never a timed run: cProfile slows Python
    code ~1.5-2×); writes bench/results/profile-<stamp>.json with the top functions by own time and
    by cumulative time per backend, and the share of wall time spent in each stage."""
    import io
    import pstats

    settings = Settings.load()
    at = stamp()
    tag = f"prof{int(time.time())}"
    plain, _schema, _state = prefill(settings, tag, events, keys, seed, say)
    out: dict = {"settings": {"events": events, "keys": keys, "batch": batch, "seed": seed},
                 "loadavg_start": loadavg(), "profiles": {}}
    for backend in backends:
        prof_path = str(settings.state_dir / "bench" / f"{tag}-{backend}.prof")
        target = f"{tag}_pg" if backend == "postgres" else str(settings.state_dir / "bench" / f"{tag}_duck.duckdb")
        r = run_ours(settings, plain, backend, batch, target, say, profile=prof_path)
        st = pstats.Stats(prof_path)
        total = st.total_tt

        def rows(sort: str, st=st, total=total) -> list[dict]:
            st.sort_stats(sort)
            res = []
            for func in st.fcn_list[:top]:
                cc, nc, tt, ct, _callers = st.stats[func]
                res.append({"function": f"{func[0].replace(str(REPO_ROOT) + '/', '')}:{func[1]}({func[2]})",
                            "calls": nc, "own_s": round(tt, 2), "cumulative_s": round(ct, 2),
                            "own_pct": round(100 * tt / total, 1), "cumulative_pct": round(100 * ct / total, 1)})
            return res

        buf = io.StringIO()
        pstats.Stats(prof_path, stream=buf).sort_stats("tottime").print_stats(top)
        out["profiles"][backend] = {"run": r, "total_s": round(total, 2), "by_own_time": rows("tottime"),
                                    "by_cumulative": rows("cumulative")}
        (settings.state_dir / "bench" / f"{tag}-{backend}.txt").write_text(buf.getvalue())
        say(f"profile {backend}: top own time: " + "; ".join(
            f"{x['function'].split('/')[-1]} {x['own_pct']}%" for x in out["profiles"][backend]["by_own_time"][:8]))
        if backend == "postgres":
            drop_pg_databases(settings, [target])
        else:
            for suffix in ("", ".wal"):
                try:
                    os.unlink(target + suffix)
                except FileNotFoundError:
                    pass
    path = write_results("profile", out, at)
    say(f"results: {path.relative_to(REPO_ROOT)}")
    return out
