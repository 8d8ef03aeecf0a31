"""PNG plots of benchmark results (matplotlib, headless): next to the results file and, when asked for
(`reporting bench --docs-images ...`), as the copy in docs/img/bench-<kind>.png that docs/benchmarks.md shows
and captions with its run: a plain run never replaces the documented picture."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.bench.common import IMG_DIR, RESULTS_DIR, split_system

LABELS = {"ours_postgres": "ours → PostgreSQL", "ours_duckdb": "ours → DuckDB", "ours_ducklake": "ours → DuckLake",
          "jdbc_sink": "Debezium JDBC sink\n→ PostgreSQL"}
COLORS = {"ours_postgres": "#2b6cb0", "ours_duckdb": "#2f855a", "ours_ducklake": "#6b46c1", "jdbc_sink": "#c05621"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_docs_images = False


def set_docs_images(enabled: bool) -> None:
    """Copy each new plot over docs/img/bench-<kind>.png too (off by default)."""
    global _docs_images
    _docs_images = bool(enabled)


def _save(fig, kind: str, at: str, latest: str | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{kind}-{at}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    if _docs_images:
        IMG_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, IMG_DIR / f"bench-{latest or kind}.png")
    return path


def _label(system: str) -> str:
    base, planners = split_system(system)
    label = LABELS.get(base, base)
    return f"{label}\n+{planners} planner processes" if planners else label


def _color(system: str) -> str:
    base, planners = split_system(system)
    color = COLORS.get(base, "#888888")
    if planners:  # the same hue, lighter
        r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
        color = "#{:02x}{:02x}{:02x}".format(*(c + (255 - c) * 2 // 5 for c in (r, g, b)))
    return color


def plot_apply(doc: dict, at: str) -> Path:
    """Bar chart of the apply rates; the latest run with the JDBC sink is docs/img/bench-apply.png,
    the latest of ours only (`bench apply`, with and without planner processes) bench-apply-ours.png."""
    plt = _plt()
    s = doc["summary"]["events_per_s"]
    systems = list(s)
    med = [s[k]["median"] for k in systems]
    lo = [s[k]["median"] - s[k]["min"] for k in systems]
    hi = [s[k]["max"] - s[k]["median"] for k in systems]
    fig, ax = plt.subplots(figsize=(max(7, 1.9 * len(systems)), 4))
    bars = ax.bar([_label(k) for k in systems], med, yerr=[lo, hi], capsize=6, color=[_color(k) for k in systems])
    for b, v in zip(bars, med, strict=True):
        ax.annotate(f"{v:,.0f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                    xytext=(0, 3), textcoords="offset points")
    st = doc["settings"]
    ratios = "; ".join(f"{k.split('/')[0].removeprefix('ours_')}/sink {v['median']}×"
                       for k, v in doc["summary"]["ratios"].items())
    ax.set_ylabel("change events / s (median, min–max)")
    ax.set_title(f"Apply {st['events']:,} events (20/70/10 over {st['keys']:,} keys), {st['reps']} reps\n{ratios}",
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, "apply", at, latest="apply" if "jdbc_sink" in systems else "apply-ours")


def plot_e2e(doc: dict, at: str) -> Path:
    plt = _plt()
    steps = [s for s in doc["steps"] if s.get("kind", "pipeline") == "pipeline" and not s.get("invalid")]
    x = [s["events_per_s_offered"] for s in steps]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^-")):
        ax1.plot(x, [s["latency_visible"][key] for s in steps], style, label=f"commit→visible {key}")
    ax1.axhline(3.0, color="red", lw=0.8, ls=":", label="goal p99 ≤ 3 s")
    ax1.set_xlabel("change events / s into Kafka")
    ax1.set_ylabel("seconds")
    ax1.set_yscale("log")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax1.set_title("Latency source commit → visible in reporting.orders_v2", fontsize=10)
    ax2.plot(x, [s["events_per_s_offered"] for s in steps], "o-", label="into Kafka (Debezium)")
    ax2.plot(x, [s["events_per_s_applied"] for s in steps], "s-", label="applied (pipeline)")
    for s in steps:
        if not s["sustained"]:
            ax2.annotate("lag grows", (s["events_per_s_offered"], s["events_per_s_applied"]), fontsize=8,
                         xytext=(0, -14), textcoords="offset points", ha="center", color="red")
    ax2.set_xlabel("change events / s into Kafka")
    ax2.set_ylabel("events / s")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    ax2.set_title(f"Throughput per step ({doc['settings']['backend']} backend)", fontsize=10)
    return _save(fig, "e2e", at, latest=f"e2e-{doc['settings']['backend']}")


def plot_linger(doc: dict, at: str) -> Path:
    """CPU per event and commit → visible latency against `pipeline.linger_ms` (bench/linger_curve.py)."""
    plt = _plt()
    pts = doc["points"]
    x = [p["linger_ms"] for p in pts]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(x, [p["pipeline_cpu_us_per_event"] for p in pts], "o-", label="pipeline process")
    ax1.plot(x, [p["apply_cpu_us_per_event"] for p in pts], "s--", label="apply stage")
    if any(p.get("reporting_pg_cpu_us_per_event") for p in pts):
        ax1.plot(x, [p.get("reporting_pg_cpu_us_per_event") for p in pts], "^:", label="reporting PostgreSQL")
    for p in pts:
        ax1.annotate(f"{p['events_per_batch']:.0f}/batch" if p.get("events_per_batch") else "",
                     (p["linger_ms"], p["pipeline_cpu_us_per_event"] or 0), fontsize=7, xytext=(0, 6),
                     textcoords="offset points", ha="center")
    bulk = (doc.get("bulk_reference") or {}).get("catch_up_cpu_us_per_event")
    if bulk:
        ax1.axhline(bulk, color="grey", lw=0.8, ls="--", label=f"bulk (catch-up), {bulk:.0f} µs")
        ax1.axhline(2 * bulk, color="red", lw=0.8, ls=":", label="goal ≤ 2× bulk")
    ax1.set_xlabel("pipeline.linger_ms")
    ax1.set_ylabel("CPU µs per applied event")
    ax1.set_ylim(bottom=0)
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    s = doc["settings"]
    ax1.set_title(f"CPU per event ({s['backend']}, simulator asked {s['rate_ops_per_s']:g} ops/s)", fontsize=10)
    for key, style in (("visible_p50_s", "o-"), ("visible_p99_s", "^-")):
        ax2.plot(x, [p[key] for p in pts], style, label=f"commit→visible {key.split('_')[1]}")
    ax2.axhline(1.0, color="red", lw=0.8, ls=":", label="p99 goal 1 s")
    ax2.set_xlabel("pipeline.linger_ms")
    ax2.set_ylabel("seconds")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    rates = [p["events_per_s_applied"] for p in pts if p.get("events_per_s_applied")]
    ax2.set_title(f"Latency (applied {min(rates):,.0f}–{max(rates):,.0f} ev/s)" if rates else "Latency", fontsize=10)
    return _save(fig, "linger", at, latest=f"linger-{s['backend']}")


def plot_snapshot(doc: dict, at: str) -> Path:
    plt = _plt()
    r = doc["result"]
    names = ["Debezium snapshot\n→ Kafka", "pipeline:\ncontract tables complete"]
    vals = [r["source_rows_per_s"], r["rows_per_s"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    bars = ax.bar(names, vals, color=["#c05621", "#2b6cb0"])
    for b, v in zip(bars, vals, strict=True):
        ax.annotate(f"{v:,.0f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", xytext=(0, 3),
                    textcoords="offset points")
    ax.set_ylabel("source rows / s (orders + order lines)")
    ax.set_title(f"Snapshot of {r['orders']:,} orders + {r['order_lines']:,} lines "
                 f"({doc['settings']['backend']}): {r['seconds']:.0f} s", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, "snapshot", at, latest=f"snapshot-{doc['settings']['backend']}")


def plot_lake_soak(doc: dict, at: str) -> Path:
    """Files of a DuckLake over a long stream, with the maintenance runs marked."""
    plt = _plt()
    samples = doc["samples"]
    minutes = [s["t_s"] / 60 for s in samples]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    ax.plot(minutes, [s["parquet_on_disk"] for s in samples], label="Parquet files on disk", color="#6b46c1")
    ax.plot(minutes, [s["data_files"] + s["delete_files"] for s in samples],
            label="files the current snapshot reads", color="#2f855a")
    for run in doc["maintenance"]:
        ax.axvline(run["t_s"] / 60, color="#999999", linewidth=0.8, linestyle=":")
    ax.set_ylabel("files")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"DuckLake streaming {doc['events_per_s']:,} events/s for {doc['seconds'] / 60:.0f} min "
                 f"(a batch every {doc['linger_s']:g} s; maintenance every {doc['maintain_every_s'] / 60:g} min, dotted)",
                 fontsize=9)
    ax2.plot(minutes, [s["snapshots"] for s in samples], label="snapshots kept", color="#c05621")
    ax2.set_ylabel("snapshots")
    ax2.set_xlabel("minutes")
    ax2b = ax2.twinx()
    ax2b.plot(minutes, [s["catalog_mb"] for s in samples], label="catalog MB", color="#2b6cb0")
    ax2b.set_ylabel("SQLite catalog, MB")
    ax2.legend(loc="upper left", fontsize=8)
    ax2b.legend(loc="upper right", fontsize=8)
    path = _save(fig, "lake-soak", at)
    plt.close(fig)
    return path
