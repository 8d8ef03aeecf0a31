"""Faults on the real stack while MusicCorp traffic runs; afterwards `reconcile` must find zero
differences (no loss, no duplicates, no lost deletes). The reduced set runs in CI (`make test`);
`make test-faults` runs the full set (longer outages, more kills) with REPORTING_FAULTS_FULL=1.

The stream writes to the e2e backend (REPORTING_E2E_BACKEND: the DuckDB file, or a DuckLake, where the
engine process of each killed stream dies with it); `make test-ducklake` runs the reduced set on DuckLake.
The PostgreSQL-backend scenario runs on PostgreSQL whatever the e2e backend.

    REPORTING_E2E_PORT_OFFSET=600 REPORTING_E2E_BACKEND=ducklake .venv/bin/pytest tests/e2e/test_faults.py
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from pipelines.stack.bootstrap import service_urls
from tests.e2e.faults import StreamProcess, Traffic, caught_up_and_reconciled
from tests.support import reporting_db

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

FULL = os.environ.get("REPORTING_FAULTS_FULL") == "1"


def test_kill9_pipeline_repeatedly_while_traffic_runs(stack, tmp_path):
    """≥10 crashes: external SIGKILL at random moments plus injected crashes inside the DB
    transaction (mid-batch) and between the DB commit and the Kafka commit. Every other start plans
    in two planner processes (`REPORTING_PLANNERS=2`): those die with the stream, and the effect
    is the same."""
    settings = stack.settings
    rng = random.Random(11)
    traffic = Traffic(service_urls(stack), rate=60, duration=60 if FULL else 25, seed=21)
    stream = StreamProcess(settings, tmp_path / "stream.log",
                           {"REPORTING_FAULT_INJECT": "mid_batch:0.15,after_commit:0.15"})
    crashes = 0
    traffic.start()
    stream.start()
    target = 25 if FULL else 10
    while crashes < target:
        time.sleep(rng.uniform(0.3, 1.5))
        if stream.alive():
            stream.kill9()
        crashes += 1  # killed by us, or it crashed itself at an injected fault point
        # even starts and the last one (which runs until the traffic ends) plan in two planner processes
        stream.start({"REPORTING_PLANNERS": "2" if crashes % 2 == 0 or crashes == target else "0"})
    traffic.join(timeout=180)
    assert traffic.error is None, traffic.error
    log_path = tmp_path / "stream.log"
    deadline = time.monotonic() + 90
    while "planning in 2 planner process(es)" not in log_path.read_text(errors="replace") and stream.alive():
        assert time.monotonic() < deadline, "the last stream never started its planner processes"
        time.sleep(0.5)
    stream.stop()
    assert not stream.leftovers(), stream.leftovers(0)
    bad = caught_up_and_reconciled(settings)
    assert not bad, [(r.table, r.missing, r.extra, r.different, r.invalid, r.error) for r in bad]
    assert stream.starts >= 11
    log = log_path.read_text(errors="replace")
    assert "planning in 2 planner process(es)" in log, log[-2000:]


def test_kafka_and_connect_restart_and_source_outage(stack, tmp_path):
    """Restart the broker, restart Kafka Connect, stop the orders database for a while; the
    stream (kept running) and the connectors recover and nothing is lost."""
    settings = stack.settings
    traffic = Traffic({k: v for k, v in service_urls(stack).items()}, rate=40, duration=20, seed=22)
    stream = StreamProcess(settings, tmp_path / "stream.log")
    stream.start()
    traffic.start()
    time.sleep(3)
    stack.kafka.stop()
    time.sleep(2)
    stack.kafka.start()
    connect = stack.connect()
    connect.stop()
    connect.start()
    traffic.join(timeout=180)
    assert traffic.error is None, traffic.error
    orders_db = stack.pg["orders"]
    orders_db.stop()
    time.sleep(30 if FULL else 8)
    orders_db.start()
    from pipelines.stack.bootstrap import apply_connectors

    apply_connectors(stack, say=lambda _m: None, timeout=240)  # restarts failed tasks if needed
    with_orders = Traffic(service_urls(stack), rate=30, duration=5, seed=23)
    with_orders.start()
    with_orders.join(timeout=120)
    stream.stop()
    bad = caught_up_and_reconciled(settings)
    assert not bad, [(r.table, r.missing, r.extra, r.different, r.invalid, r.error) for r in bad]


# held by another process: DuckDB takes its file lock by opening the file (for 12 s)
_HOLD_DUCKDB = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); time.sleep(float(sys.argv[2]))"
# DuckLake has no file lock (other readers and writers may attach the catalog); what stops a writer there is
# the SQLite catalog locked by another process's transaction: BEGIN EXCLUSIVE also keeps readers out. The
# engine's ATTACH itself waits a few seconds for a busy catalog (SQLite's busy timeout: a 5 s hold went
# unnoticed) before it fails, and only then does the stream say it waits, so the catalog is held for 25 s
_HOLD_CATALOG = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
                 "c.execute('BEGIN EXCLUSIVE'); time.sleep(float(sys.argv[2])); c.execute('ROLLBACK')")


def test_duckdb_locked_by_another_process_stream_waits_then_applies(stack, tmp_path):
    """Another process holds the reporting database when the stream starts: the stream waits for it (it does
    not exit), then applies everything. DuckDB: the file, opened by a second DuckDB. DuckLake: its SQLite
    catalog in an exclusive transaction (see _HOLD_CATALOG)."""
    settings = stack.settings
    if settings.backend == "ducklake":
        with reporting_db.writer(settings):  # the catalog file exists (when this test runs first or alone)
            pass
        hold, held, seconds = _HOLD_CATALOG, settings.ducklake.catalog, "25"
    else:
        hold, held, seconds = _HOLD_DUCKDB, settings.duckdb_path, "12"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(held), seconds])
    time.sleep(2)  # the holder has the file
    traffic = Traffic(service_urls(stack), rate=30, duration=6, seed=24)
    traffic.start()
    stream = StreamProcess(settings, tmp_path / "stream.log")
    stream.start()
    time.sleep(4)
    assert stream.alive(), "the stream must wait for the lock, not exit"
    assert holder.wait(timeout=60) == 0, "the holder could not take the lock"
    traffic.join(timeout=120)
    stream.stop()
    assert "waiting for the reporting DB" in (tmp_path / "stream.log").read_text()
    assert not caught_up_and_reconciled(settings)


def test_postgres_backend_down_for_a_while(stack, tmp_path):
    """PostgreSQL backend: stop the reporting server mid-stream; the worker retries with backoff
    and reconnects; nothing is skipped."""
    settings = stack.settings.with_backend("postgres")
    from pipelines.apply.runner import open_backend

    open_backend(settings).close()  # schema + first connection
    traffic = Traffic(service_urls(stack), rate=40, duration=15, seed=25)
    stream = StreamProcess(settings, tmp_path / "stream.log", {"REPORTING_APPLY_MAX_RETRIES": "12"})
    stream.start()
    traffic.start()
    time.sleep(4)
    stack.reporting_pg.stop()
    time.sleep(20 if FULL else 6)
    stack.reporting_pg.start()
    traffic.join(timeout=120)
    time.sleep(3)
    assert stream.alive(), (tmp_path / "stream.log").read_text()[-2000:]
    stream.stop()
    bad = caught_up_and_reconciled(settings)
    assert not bad, [(r.table, r.missing, r.extra, r.different, r.invalid, r.error) for r in bad]
