"""Helpers for the fault scenarios: a `reporting stream` subprocess, traffic, catch-up, reconcile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipelines.apply.runner import run_pipeline
from pipelines.settings import Settings
from tests.e2e.conftest import E2E_ENV

REPORTING = str(Path(sys.executable).with_name("reporting"))


class StreamProcess:
    """`reporting stream` as a real OS process that can be SIGKILLed and restarted."""

    def __init__(self, settings: Settings, log: Path, extra_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.log = log
        # unbuffered: a SIGKILLed stream's last lines are in the log too
        self.env = {**os.environ, **E2E_ENV, "REPORTING_BACKEND": settings.backend, "PYTHONUNBUFFERED": "1",
                    **(extra_env or {})}
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.sessions: list[int] = []  # one per start (start_new_session: session id = the stream's pid)

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([REPORTING, "stream", "--replica-every", "0"], env={**self.env, **(extra_env or {})},
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        self.sessions.append(self.proc.pid)

    def leftovers(self, wait_s: float = 10.0) -> list[str]:
        """Processes still alive in the sessions of earlier starts (planner processes outliving a
        killed stream, say), after up to `wait_s` seconds."""
        import psutil

        deadline = time.monotonic() + wait_s
        while True:
            left = []
            for p in psutil.process_iter(["pid", "cmdline", "status"]):
                try:
                    if os.getsid(p.pid) in self.sessions and p.info["status"] != psutil.STATUS_ZOMBIE:
                        left.append(f"{p.pid}: {' '.join(p.info['cmdline'] or [])[:120]}")
                except (OSError, psutil.Error):
                    continue
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill9()


class Traffic(threading.Thread):
    """The MusicCorp simulator in a background thread."""

    def __init__(self, urls: dict[str, str], rate: float, duration: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.args = (urls, rate, duration, seed)
        self.report = None
        self.error: BaseException | None = None

    def run(self) -> None:
        from estate import simulator

        urls, rate, duration, seed = self.args
        try:
            self.report = simulator.run(urls, rate=rate, duration=duration, seed=seed, progress=False)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            self.error = exc


def catch_up(settings: Settings, timeout: float = 180.0, quiet_rounds: int = 3) -> None:
    """Ingest until several consecutive passes find nothing new (Debezium is asynchronous)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < quiet_rounds:
        if time.monotonic() > deadline:
            raise AssertionError(f"pipeline did not catch up within {timeout}s")
        stats = run_pipeline(settings=settings, until_caught_up=True, say=lambda _m: None, install_signals=False,
                             replica_every=0)
        quiet = quiet + 1 if stats.events == 0 else 0
        time.sleep(1.0)


def reconcile_all(settings: Settings) -> list:
    """Reconcile every contract table that has a projection; return the results that are not clean."""
    from pipelines.reconcile import reconcile

    results = [r for r in reconcile(settings) if not r.skipped]
    assert results, "nothing was reconciled"
    rows = sum(r.source_rows for r in results)
    diffs = sum(r.differences for r in results)
    print(f"reconcile: {len(results)} tables, {rows:,} source rows compared, {diffs} difference(s)")
    return [r for r in results if not r.ok]


def caught_up_and_reconciled(settings: Settings, timeout: float = 150.0) -> list:
    """Catch up, then reconcile; while differences remain, repeat until `timeout`. Returns what is
    still not clean (empty = zero differences).

    After a source outage the connector may still be reconnecting (Debezium retries, then the task is
    restarted) when the pipeline finds nothing new for a few passes, so one early reconcile can see
    changes that are merely late. Late changes arrive; lost ones never do, and neither do duplicates
    or resurrected rows go away, so a difference that outlives the timeout is a real one.
    """
    deadline = time.monotonic() + timeout
    while True:
        catch_up(settings)
        bad = reconcile_all(settings)
        if not bad or time.monotonic() > deadline:
            return bad
        print("reconcile: differences left, catching up again: "
              + ", ".join(f"{r.table} (missing {r.missing}, different {r.different})" for r in bad))
        time.sleep(5)

