"""The latency/CPU trade of `pipeline.linger_ms`, measured: one simulator rate, the stream restarted per value.

`pipeline.linger_ms` is how long the stream keeps collecting polled records before it cuts a batch
(docs/configuration.md). A batch costs a fixed amount per contract table it touches (one statement each,
plus the status and offsets statements and the commit: docs/benchmarks.md §8), so fewer, larger batches
cost less CPU per event and add up to `linger_ms` of latency. This bench measures that curve: for each
linger value, one e2e step (`e2e_bench._step`: the simulator at `rate_ops` for `step_s`, probes for
commit → visible, process CPU sampled, stage CPU from the stream's status lines) with a stream started
with `--linger-ms <value>`. All values share one consumer group, so each stream starts where the last one
stopped. Repetitions run the values in alternating order with the same simulator seed per repetition
(the same traffic for every value), and the curve is the median per value.

At the end (`bulk_reference`), the e2e bench's source-only step gives the same run's references: Debezium's
rate with the stream stopped, and the CPU per event of the stream catching up with that backlog in large
batches (the bulk cost). Each point then also has `cpu_vs_bulk` (its pipeline CPU per event over the bulk
one) and `applied_vs_source_only` (its applied rate over Debezium's rate alone).

Result: `bench/results/linger-<stamp>.json` and `.png`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from pipelines.bench.common import Say, loadavg, stamp, write_results
from pipelines.settings import REPO_ROOT


def _point(step: dict) -> dict:
    """The figures of one e2e step that the curve plots."""
    stages = step.get("stages_during_load") or {}
    cpu = stages.get("cpu_us_per_event") or {}
    return {"events_per_s_offered": step["events_per_s_offered"], "events_per_s_applied": step["events_per_s_applied"],
            "sustained": step["sustained"], "events_per_batch": stages.get("events_per_batch"),
            "pipeline_cpu_us_per_event": step.get("pipeline_cpu_us_per_event"),
            "apply_cpu_us_per_event": cpu.get("apply"), "stage_cpu_us_per_event": cpu or None,
            "reporting_pg_cpu_us_per_event": step.get("reporting_pg_cpu_us_per_event"),
            "visible_p50_s": step["latency_visible"].get("p50"), "visible_p99_s": step["latency_visible"].get("p99"),
            "kafka_to_visible_p50_s": step["latency_kafka_to_visible"].get("p50"),
            "kafka_to_visible_p99_s": step["latency_kafka_to_visible"].get("p99"),
            "loadavg_before": step.get("loadavg_before")}


def _median(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals), 3) if vals else None


def curve(runs: list[dict]) -> list[dict]:
    """Median per linger value of every numeric figure of its runs (pure)."""
    out = []
    for ms in sorted({r["linger_ms"] for r in runs}):
        mine = [r for r in runs if r["linger_ms"] == ms]
        keys = [k for k, v in mine[0].items() if (v is None or isinstance(v, int | float)) and not isinstance(v, bool)
                and k not in ("linger_ms", "rep")]  # figures (None: not measured on this backend)
        point = {"linger_ms": ms, "runs": len(mine), "all_sustained": all(r["sustained"] for r in mine)}
        point.update({k: _median([r.get(k) for r in mine]) for k in keys})
        out.append(point)
    return out


def bulk_reference(step: dict) -> dict:
    """The references of a source-only step (e2e_bench): Debezium's rate alone and the catch-up's CPU per event."""
    backlog = step.get("backlog_events") or 0
    cpu = (step.get("catch_up_pipeline") or {}).get("cpu_s")
    return {"source_only_events_per_s": step.get("events_per_s_offered"), "backlog_events": backlog,
            "catch_up_events_per_s": step.get("catch_up_events_per_s"),
            "catch_up_cpu_us_per_event": round(1e6 * cpu / backlog, 1) if cpu and backlog else None}


def relative(points: list[dict], bulk: dict) -> None:
    """Add `cpu_vs_bulk` and `applied_vs_source_only` to each point (pure; None without a reference)."""
    ref_cpu, ref_rate = bulk.get("catch_up_cpu_us_per_event"), bulk.get("source_only_events_per_s")
    for p in points:
        cpu, rate = p.get("pipeline_cpu_us_per_event"), p.get("events_per_s_applied")
        p["cpu_vs_bulk"] = round(cpu / ref_cpu, 2) if cpu and ref_cpu else None
        p["applied_vs_source_only"] = round(rate / ref_rate, 2) if rate and ref_rate else None


def bench_linger(lingers: Sequence[int] = (0, 100, 250, 500, 1000), rate_ops: float = 3000.0, step_s: float = 40.0,
                 backend: str = "duckdb", reps: int = 2, bulk: bool = True, say: Say = print) -> dict:
    from pipelines.bench.e2e_bench import bench_e2e
    from pipelines.bench.plot import plot_linger

    at = stamp()
    group = f"bench-linger-{at}"
    load_start = loadavg()
    runs: list[dict] = []
    for rep in range(reps):
        order = list(lingers) if rep % 2 == 0 else list(reversed(lingers))
        for ms in order:
            say(f"linger {ms} ms, repetition {rep + 1}/{reps} ...")
            doc = bench_e2e(rates=(rate_ops,), step_s=step_s, backend=backend, source_only=False, linger_ms=ms,
                            group=group, write=False, seed=100 + rep, say=say)
            runs.append({"linger_ms": ms, "rep": rep, **_point(doc["steps"][0])})
    points = curve(runs)
    reference: dict = {}
    if bulk:
        say("bulk reference: Debezium alone with the stream stopped, then the stream's catch-up ...")
        ref = bench_e2e(rates=(), step_s=step_s, backend=backend, source_only=True, group=group, write=False,
                        seed=199, say=say)
        reference = bulk_reference(ref["steps"][0])
        relative(points, reference)
    doc = {"settings": {"lingers_ms": list(lingers), "rate_ops_per_s": rate_ops, "step_s": step_s,
                        "backend": backend, "reps": reps, "group": group},
           "loadavg_start": load_start, "bulk_reference": reference, "points": points, "runs": runs}
    path = write_results("linger", doc, at)
    png = plot_linger(doc, at)
    for p in points:
        say(f"linger {p['linger_ms']:>5} ms: {p['events_per_s_applied']} ev/s applied, {p['events_per_batch']} events "
            f"per batch, pipeline {p['pipeline_cpu_us_per_event']} µs CPU per event (apply "
            f"{p['apply_cpu_us_per_event']}; {p.get('cpu_vs_bulk')}× bulk), visible p50/p99 {p['visible_p50_s']}/"
            f"{p['visible_p99_s']} s, {p.get('applied_vs_source_only')} of Debezium alone")
    if reference:
        say(f"bulk reference: Debezium alone {reference['source_only_events_per_s']} ev/s; catch-up "
            f"{reference['catch_up_events_per_s']} ev/s at {reference['catch_up_cpu_us_per_event']} µs CPU per event")
    say(f"results: {path.relative_to(REPO_ROOT)}; plot {png.relative_to(REPO_ROOT)}")
    return doc
