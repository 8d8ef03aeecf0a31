"""On the real stack (DuckDB backend): while `reporting stream` holds the reporting file, `reporting status`
and `reporting dlq list` exit 0 with figures read from the replicas the stream publishes, and say when those
were published; an order written during the stream reaches the replica, a bad one the dead letters.

    REPORTING_E2E_PORT_OFFSET=500 pytest tests/e2e/test_status_while_streaming.py
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import psycopg
import pytest

from pipelines.bi.reader import open_replica
from pipelines.bi.replica import replica_path
from pipelines.settings import REPO_ROOT, Settings
from tests.e2e.conftest import E2E_ENV

pytestmark = pytest.mark.e2e

DEADLINE_S = 240.0
NOTE = re.compile(r"figures from the read replica published at \S+ \S+ UTC \((\d+)s ago\): .* is held by PID (\d+)")
TOPIC = "orders.public.orders"


def reporting(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "reporting"), *args], env=env, cwd=REPO_ROOT,  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)


def insert_order(conn: psycopg.Connection, customer_ref: int, state_code: int = 10) -> None:
    conn.execute("INSERT INTO orders (customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts,"
                 " terms_snapshot, metadata) VALUES (%s, %s, 1999, 'eur', now(), now(), 'terms',"
                 " '{\"channel\": \"web\"}')", (customer_ref, state_code))


def replica_count(settings: Settings, customer: int) -> int | None:
    target = replica_path(settings)
    if not target.exists():
        return None
    con = open_replica(target)
    try:
        return con.execute("SELECT count(*) FROM reporting.orders_v2 WHERE customer_id = ?", [customer]).fetchone()[0]
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


def test_status_and_dlq_list_while_the_stream_holds_the_file(stack, tmp_path):
    env = {**os.environ, **E2E_ENV, "REPORTING_ESTATE": str(stack.settings.estate.path), "REPORTING_BACKEND": "duckdb"}
    settings = Settings.load(stack.settings.estate.path, environ=env)
    assert settings.backend == "duckdb"
    customer = random.randint(10**9, 2 * 10**9)  # marks this test's orders
    group = f"status-e2e-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "stream.log"
    with log_path.open("w") as log:
        stream = subprocess.Popen([str(Path(sys.executable).parent / "reporting"), "stream", "--replica-every", "1",  # noqa: S603
                                   "--group", group], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + DEADLINE_S

        def alive() -> None:
            assert stream.poll() is None, f"stream exited: {log_path.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"stream log: {log_path.read_text()[-2000:]}"

        with psycopg.connect(settings.service_url("orders", driver=False), autocommit=True) as orders_db:
            insert_order(orders_db, customer)
            insert_order(orders_db, customer, state_code=50)  # no mapping for 50: a dead letter
        while replica_count(settings, customer) != 1:  # the good order reaches the replica
            alive()
            time.sleep(0.5)

        while True:  # and `status` reads it while the stream runs
            alive()
            with pytest.raises(duckdb.IOException, match="Could not set lock"):
                duckdb.connect(str(settings.duckdb_path), read_only=True)
            status = reporting(env, "status", "--group", group, "--format", "json")
            assert status.returncode == 0, status.stderr
            note = NOTE.search(status.stderr)
            assert note, status.stderr
            assert int(note.group(2)) == stream.pid and int(note.group(1)) < 60
            tables = {t["contract_table"]: t for t in json.loads(status.stdout)["tables"]}
            lags = json.loads(status.stdout)["lags"]
            if tables["orders_v2"]["live_rows"] and any(lag["topic"] == TOPIC for lag in lags):
                break
            time.sleep(0.5)

        while True:  # `dlq list` too: the bad order's dead letters, from the `_pipeline` replica
            alive()
            dlq = reporting(env, "dlq", "list", "--table", "orders_v2", "--limit", "100000", "--format", "json")
            assert dlq.returncode == 0, dlq.stderr
            assert NOTE.search(dlq.stderr), dlq.stderr
            if any(r["topic"] == TOPIC and "50" in r["reason"] for r in json.loads(dlq.stdout)):
                break
            time.sleep(0.5)
        table = reporting(env, "status", "--group", group)
        assert table.returncode == 0 and NOTE.search(table.stdout.splitlines()[0]), table.stdout[:500]
    finally:
        stream.send_signal(signal.SIGTERM)  # finishes the current batch, then exits
        try:
            code = stream.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stream.kill()
            stream.wait(timeout=30)
            code = None
        # This test's orders leave the source again: the dead-lettered one would otherwise stay a source
        # row no contract row matches, which a later test's `reconcile` on the same stack reports.
        with psycopg.connect(settings.service_url("orders", driver=False), autocommit=True) as orders_db:
            orders_db.execute("DELETE FROM orders WHERE customer_ref = %s", (customer,))
    assert code == 0, log_path.read_text()[-2000:]
    after = reporting(env, "status", "--group", group, "--format", "json")  # the file is free again: no replica note
    assert after.returncode == 0 and "replica" not in after.stderr, after.stderr
