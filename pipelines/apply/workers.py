"""A group of pipeline workers on one machine: `reporting stream --workers N`.

N worker processes, each an ordinary `reporting stream` (its own Python process, consumer, reporting-DB
connection and applier thread), all in one Kafka consumer group. Kafka splits the change topics'
partitions between them; each worker applies its partitions' batches with their offsets in one
reporting-DB transaction, exactly as a single worker does, so rows, dead letters and offsets stay
exactly-once whichever worker applies what. More workers than partitions leave some idle
(docs/scaling.md).

Each worker is a static member of the group (Kafka's `group.instance.id`, KIP-345) named
`<prefix>-<i>`, i = 0..N-1, the prefix being `--instance-id` or the group. This process supervises them:
a worker that exits without being asked to (a crash, kill -9) is started again with the same instance id,
so it rejoins as the same member and gets its partitions back at once, without waiting for the session
timeout and without moving the other workers' partitions. A worker that keeps failing right after it
starts (a configuration error) stops the whole group with one line. SIGTERM or SIGINT to this process
is passed on to every worker, which finishes its batch in flight; the workers also get SIGTERM when this
process dies, even by kill -9 (Linux PR_SET_PDEATHSIG).

Only the PostgreSQL backend takes several writers: a DuckDB file has one writing process.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["WorkerGroup", "WorkersError", "check_workers", "instance_ids", "run_workers", "worker_command"]


class WorkersError(RuntimeError):
    """Several workers cannot run (DuckDB backend) or one keeps failing; the message is one line."""


def check_workers(backend: str, workers: int) -> None:
    """Refuse several workers on a backend that allows one writing process."""
    if workers < 1:
        raise WorkersError(f"--workers {workers}: at least 1")
    if workers > 1 and backend == "duckdb":
        raise WorkersError(f"--workers {workers}: the DuckDB backend allows one writer process per file; several "
                           "workers need the PostgreSQL backend (reporting.backend: postgres, or REPORTING_BACKEND="
                           "postgres)")


def instance_ids(prefix: str, workers: int) -> list[str]:
    """The workers' static member ids: `<prefix>-0` ... `<prefix>-<N-1>`."""
    return [f"{prefix}-{i}" for i in range(workers)]


def worker_command(estate_path: str, group: str, instance_id: str, planners: int | None = None,
                   metrics_port: int | None = None, python: str | None = None,
                   linger_ms: int | None = None) -> list[str]:
    """The command line of one worker: `reporting --estate FILE stream --group G --instance-id ID ...`."""
    cmd = [python or sys.executable, "-u", "-m", "pipelines.cli", "--estate", estate_path, "stream",
           "--group", group, "--instance-id", instance_id]
    if planners is not None:
        cmd += ["--planners", str(planners)]
    if metrics_port is not None:
        cmd += ["--metrics-port", str(metrics_port)]
    if linger_ms is not None:
        cmd += ["--linger-ms", str(linger_ms)]
    return cmd


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervising process dies (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


@dataclass
class _Slot:
    instance_id: str
    cmd: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    starts: int = 0
    quick_failures: int = 0
    restart_at: float | None = None
    last_lines: list[str] = field(default_factory=list)
    relay: threading.Thread | None = None


class WorkerGroup:
    """Start, supervise and stop worker processes (see the module docstring).

    `commands`: instance id → command line. `say` gets every line the workers print, prefixed with
    `[<instance id>]`, and the group's own lines. A worker that exits unasked is restarted after
    `restart_delay` seconds (doubled after each exit within `quick_s` seconds of its start, up to 30 s);
    `max_quick_failures` such exits in a row stop the group."""

    def __init__(self, commands: dict[str, list[str]], say: Callable[[str], None] = print,
                 restart_delay: float = 1.0, quick_s: float = 20.0, max_quick_failures: int = 5) -> None:
        self.slots = [_Slot(i, list(cmd)) for i, cmd in commands.items()]
        self.say = say
        self.restart_delay = restart_delay
        self.quick_s = quick_s
        self.max_quick_failures = max_quick_failures
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.failure: str | None = None

    # -- processes ---------------------------------------------------------------------------------
    def _spawn(self, slot: _Slot) -> None:
        slot.proc = subprocess.Popen(  # noqa: S603 - our own command line
            slot.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches this process only, which passes it on
            preexec_fn=_die_with_parent)  # noqa: PLW1509 - only a prctl, before exec
        slot.started = time.monotonic()
        slot.starts += 1
        slot.restart_at = None
        slot.relay = threading.Thread(target=self._relay, args=(slot, slot.proc), daemon=True,
                                      name=f"relay-{slot.instance_id}")
        slot.relay.start()
        again = " again" if slot.starts > 1 else ""
        self.say(f"worker {slot.instance_id} started{again} (pid {slot.proc.pid})")

    def _relay(self, slot: _Slot, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            with self._lock:
                slot.last_lines = (slot.last_lines + [line])[-5:]
            self.say(f"[{slot.instance_id}] {line}")

    def pids(self) -> dict[str, int]:
        """Instance id → pid of every worker running now."""
        return {s.instance_id: s.proc.pid for s in self.slots if s.proc is not None and s.proc.poll() is None}

    # -- the loop ------------------------------------------------------------------------------------
    def stop(self, *_: object) -> None:
        self._stop.set()

    def run(self, install_signals: bool = True, poll_s: float = 0.2) -> int:
        """Supervise until stopped (0) or until a worker keeps failing (1); the workers are stopped either way."""
        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        try:
            for slot in self.slots:
                self._spawn(slot)
            while not self._stop.wait(poll_s):
                now = time.monotonic()
                for slot in self.slots:
                    if slot.proc is not None and slot.proc.poll() is not None and slot.restart_at is None:
                        self._exited(slot, now)
                    if slot.restart_at is not None and now >= slot.restart_at and not self._stop.is_set():
                        self._spawn(slot)
                if self.failure:
                    break
        finally:
            self._stop_all()
        if self.failure:
            raise WorkersError(self.failure)
        return 0

    def _exited(self, slot: _Slot, now: float) -> None:
        assert slot.proc is not None
        if slot.relay is not None:
            slot.relay.join(timeout=2)  # its last lines first (a child it started may still hold the pipe)
        code = slot.proc.returncode
        ran = now - slot.started
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        slot.quick_failures = slot.quick_failures + 1 if ran < self.quick_s else 0
        if slot.quick_failures >= self.max_quick_failures:
            with self._lock:
                last = next((ln for ln in reversed(slot.last_lines) if ln.strip()), "no output")
            self.failure = (f"worker {slot.instance_id} stopped {slot.quick_failures} times in a row within "
                            f"{self.quick_s:.0f}s of starting ({how}): {last}")
            slot.restart_at = float("inf")
            return
        delay = min(30.0, self.restart_delay * (2 ** slot.quick_failures))
        slot.restart_at = now + delay
        self.say(f"worker {slot.instance_id} {how} after {ran:.0f}s; starting it again in {delay:.0f}s with the "
                 "same instance id (it gets its partitions back)")

    def _stop_all(self, timeout: float = 120.0) -> None:
        """SIGTERM every worker (each commits its batch in flight), SIGKILL what still runs after `timeout`."""
        running = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for p in running:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in running:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait(timeout=30)


def prepare_reporting_db(settings, group: str, say: Callable[[str], None] = print) -> None:
    """Create the reporting schema and request the backfills once, before the workers start: N workers
    doing it at the same moment race on PostgreSQL's catalog (CREATE ... IF NOT EXISTS is not safe
    against a concurrent create) and could signal a snapshot twice. Each worker does it again, finding
    everything in place."""
    from pipelines.apply.backfill import request_backfills
    from pipelines.apply.runner import load_parts, open_backend
    from pipelines.projection import load_estate_projections

    parts = load_parts(settings.estate)
    backend = open_backend(settings, wait_s=settings.estate.pipeline.open_wait_s, say=say)
    try:
        backend.ensure_schema(list(parts.contracts.values()))
        request_backfills(settings, backend, group, load_estate_projections(settings.estate), parts.contracts,
                          say=say)
    finally:
        backend.close()


def run_workers(settings, workers: int, group: str, prefix: str | None = None, planners: int | None = None,
                metrics_port: int | None = None, say: Callable[[str], None] = print,
                install_signals: bool = True, linger_ms: int | None = None) -> int:
    """`reporting stream --workers N`: N worker processes of consumer group `group`, supervised until
    SIGTERM/SIGINT. Worker i is the static member `<prefix or group>-<i>`; with `metrics_port` it serves
    its metrics on `metrics_port + i` (0: each on a free port); `linger_ms` overrides the estate's
    pipeline.linger_ms in every worker. `settings`: the edge's Settings; the
    workers read the same estate file and inherit this process's environment (its overrides too)."""
    check_workers(settings.backend, workers)
    ids = instance_ids(prefix or group, workers)
    commands = {iid: worker_command(str(settings.estate.path), group, iid, planners,
                                    None if metrics_port is None else (metrics_port + i if metrics_port else 0),
                                    linger_ms=linger_ms)
                for i, iid in enumerate(ids)}
    prepare_reporting_db(settings, group, say)
    say(f"streaming with {workers} worker processes in consumer group {group} (static members {ids[0]} .. "
        f"{ids[-1]})")
    return WorkerGroup(commands, say=say).run(install_signals=install_signals)
