"""Shared plumbing of the benchmark suite: machine facts, per-process sampling, results files.

Every results file (`bench/results/<kind>-<stamp>.json`) carries the machine, the versions, the
settings, the raw numbers and the load average before and after, because the 2-core machine is
shared with other engineers' test runs: figures are comparable only within one file.
"""

from __future__ import annotations

import json
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pipelines.settings import REPO_ROOT, Settings

RESULTS_DIR = REPO_ROOT / "bench" / "results"
IMG_DIR = REPO_ROOT / "docs" / "img"

Say = Callable[[str], None]


def ours_system(backend: str, planners: int = 0) -> str:
    """A benchmark system's name: 'ours_duckdb', or 'ours_duckdb_p2' with 2 planner processes."""
    return f"ours_{backend}" + (f"_p{planners}" if planners else "")


def split_system(system: str) -> tuple[str, int]:
    """'ours_duckdb_p2' → ('ours_duckdb', 2); 'ours_postgres' or 'jdbc_sink' → (system, 0)."""
    m = re.fullmatch(r"(.+)_p(\d+)", system)
    return (m.group(1), int(m.group(2))) if m else (system, 0)


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def versions() -> dict:
    import duckdb
    import kafka
    import psycopg

    return {"duckdb": duckdb.__version__, "kafka-python": kafka.__version__, "psycopg": psycopg.__version__,
            "kafka": "4.3.0", "debezium-postgres": "3.6.1.Final", "debezium-mariadb": "3.5.0.Final",
            "debezium-jdbc-sink": "3.5.0.Final", "postgresql": "15", "mariadb": "10.11"}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def write_results(kind: str, doc: dict, at: str | None = None) -> Path:
    """Write `bench/results/<kind>-<stamp>.json` with machine, versions and load average added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    at = at or stamp()
    path = RESULTS_DIR / f"{kind}-{at}.json"
    full = {"kind": kind, "at": at, "machine": machine(), "versions": versions(), **doc}
    full.setdefault("loadavg_end", loadavg())
    path.write_text(json.dumps(full, indent=2, default=str) + "\n")
    return path


# --------------------------------------------------------------------------- processes
def stack_processes(settings: Settings) -> dict[str, int]:
    """Root pids of the stack's processes (name → pid), from their pid files; absent ones are left out."""
    from pipelines.stack import proc
    from pipelines.stack.manager import Stack

    st = Stack(settings)
    found = {}
    for name, pid in [("kafka", st.kafka.running_pid()), ("connect", st.connect().running_pid()),
                      ("pg_reporting", st.reporting_pg.running_pid()),
                      *[(f"pg_{k}", c.running_pid()) for k, c in st.pg.items()]]:
        if pid:
            found[name] = pid
    for k, m in st.mariadb.items():
        pid = proc.read_pid(m.root / "run" / "mysqld.pid")
        if pid and proc.pid_alive(pid):
            found[f"mariadb_{k}"] = pid
    return found


@dataclass
class _Group:
    name: str
    pid: int
    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    cpu0: float | None = None
    peak_rss: int = 0
    peak_rss_total: int = 0
    peak_pss_total: int = 0
    timeline: list[tuple[float, float, float]] = field(default_factory=list)  # (t, cpu_s, rss_mb)


class ProcessSampler:
    """Samples CPU seconds and RSS of named process trees (a root pid and its children) in a thread.

    CPU is summed over every pid ever seen in the tree (children that exit keep their last sample),
    as the delta between `start()` and `stop()`. `peak_rss_mb` is the largest single process of the
    tree (a PostgreSQL cluster's backends share their buffers, so a sum would count them twice);
    for one-process trees (pipeline, Kafka, Connect) it is exactly that process's peak RSS.
    `timeline` keeps (seconds since start, cumulative CPU seconds, RSS MB) per sample.
    """

    def __init__(self, roots: dict[str, int], interval: float = 0.5, pss: Sequence[str] = ("pipeline",)) -> None:
        self.groups = {name: _Group(name, pid) for name, pid in roots.items()}
        self.pss = set(pss)  # trees whose summed PSS is sampled too (shared pages counted once in all)
        self.interval = interval
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.t0 = 0.0
        self.t1 = 0.0

    def _tree(self, pid: int) -> list[psutil.Process]:
        try:
            p = psutil.Process(pid)
            return [p, *p.children(recursive=True)]
        except psutil.Error:
            return []

    def sample(self) -> None:
        now = time.monotonic() - self.t0
        for g in self.groups.values():
            rss_max = rss_total = pss_total = 0
            for p in self._tree(g.pid):
                try:
                    ct = p.cpu_times()
                    rss = p.memory_info().rss
                    if g.name in self.pss:
                        pss_total += p.memory_full_info().pss
                except psutil.Error:
                    continue
                g.cpu_by_pid[p.pid] = ct.user + ct.system
                rss_max = max(rss_max, rss)
                rss_total += rss
            cpu = sum(g.cpu_by_pid.values())
            if g.cpu0 is None:
                g.cpu0 = cpu
            g.peak_rss = max(g.peak_rss, rss_max)
            g.peak_rss_total = max(g.peak_rss_total, rss_total)
            g.peak_pss_total = max(g.peak_pss_total, pss_total)
            g.timeline.append((round(now, 2), round(cpu - g.cpu0, 2), round(rss_max / 2**20, 1)))

    def _loop(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def start(self) -> ProcessSampler:
        self.t0 = time.monotonic()
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._halt.set()
        self._thread.join()
        self.sample()
        self.t1 = time.monotonic()
        return self.summary()

    def summary(self) -> dict:
        wall = max(1e-9, (self.t1 or time.monotonic()) - self.t0)
        out = {}
        for g in self.groups.values():
            cpu = sum(g.cpu_by_pid.values()) - (g.cpu0 or 0.0)
            out[g.name] = {"cpu_s": round(cpu, 1), "cpu_pct_of_core": round(100 * cpu / wall, 1),
                           "peak_rss_mb": round(g.peak_rss / 2**20, 1),
                           "peak_rss_total_mb": round(g.peak_rss_total / 2**20, 1)}
            if g.name in self.pss:
                out[g.name]["peak_pss_total_mb"] = round(g.peak_pss_total / 2**20, 1)
        return out

    def cpu_between(self, name: str, t_from: float, t_to: float) -> float:
        """CPU seconds of one tree between two sample times (seconds since start)."""
        tl = self.groups[name].timeline
        inside = [c for t, c, _ in tl if t_from <= t <= t_to]
        return round(inside[-1] - inside[0], 2) if len(inside) >= 2 else 0.0

    def peak_rss_between(self, name: str, t_from: float, t_to: float) -> float:
        inside = [r for t, _, r in self.groups[name].timeline if t_from <= t <= t_to]
        return max(inside, default=0.0)


# --------------------------------------------------------------------------- databases
def fresh_pg_database(settings: Settings, name: str, owner: str = "reporting_writer") -> None:
    """(Re)create a database on the reporting PostgreSQL cluster (bench targets; never `reporting`)."""
    from pipelines.stack.manager import Stack

    if name == "reporting":
        raise ValueError("benchmarks never touch the reporting database itself")
    cluster = Stack(settings).reporting_pg
    cluster.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    cluster.psql(f"CREATE DATABASE {name} OWNER {owner}")


def drop_pg_databases(settings: Settings, names: Iterable[str]) -> None:
    from pipelines.stack.manager import Stack

    cluster = Stack(settings).reporting_pg
    for name in names:
        if name != "reporting":
            cluster.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_conninfo(settings: Settings, dbname: str) -> str:
    from pipelines.apply.runner import reporting_pg_conninfo

    return reporting_pg_conninfo(settings).replace("dbname=reporting", f"dbname={dbname}")


def reporting_bin() -> str:
    """The project's `reporting` command (the venv's), for benchmark subprocesses."""
    from pipelines.settings import REPO_ROOT

    return str(REPO_ROOT / ".venv" / "bin" / "reporting")


def stop_gracefully(proc, timeout: float = 120.0) -> None:
    """SIGINT (a stream finishes its batch in flight), then SIGKILL after `timeout` seconds."""
    import signal
    import subprocess

    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
