"""Planner processes (apply/planner_pool.py) give exactly what in-process planning gives.

The same batches (the benchmark's 20/70/10 create/update/delete mix, plus TOAST updates, poison
records and an unmapped value) are applied once planned in-process and once planned in two
planner processes, through the real Worker, on both backends; contract tables, dead letters and
stored offsets must be identical. Also: a planner that cannot start says why, and planners die
with a kill -9 of their parent.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time

import orjson
import psutil
import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.apply.planner_pool import PlannerPool
from pipelines.apply.postgres_backend import PostgresBackend
from pipelines.apply.runner import load_parts
from pipelines.apply.worker import Worker
from pipelines.bench.workload import FinalState, orders_changes
from pipelines.cdc.events import Record
from pipelines.settings import REPO_ROOT
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration

TOPIC = "orders.public.orders"
_dbs = itertools.count()


def _records() -> list[Record]:
    """3,000 benchmark events on two partitions, then poison and TOAST records at known offsets."""
    out = []
    offsets = {0: 0, 1: 0}
    state = FinalState()
    for key, value in orders_changes(3000, 400, seed=7):
        state.feed(key, value)
        p = orjson.loads(key)["id"] % 2  # a key stays on one partition, as with Kafka's partitioner
        out.append(Record(TOPIC, p, offsets[p], key, value))
        offsets[p] += 1
    src = {"connector": "postgresql", "ts_ms": 1_795_000_100_000, "schema": "public", "table": "orders",
           "txId": 1, "lsn": 90_000_000}
    live = min(state.rows)  # a key stored at the end: its TOAST update keeps the stored value
    toast = {"id": live, "customer_ref": 3, "state_code": 20, "total_cents": 1234, "currency_iso": "eur",
             "created_ts": "2026-11-18T00:00:00Z", "modified_ts": "2026-11-18T00:00:01Z",
             "metadata": "__debezium_unavailable_value"}
    unmapped = dict(toast, id=4, state_code=77, metadata='{"channel": "app"}')
    tail = [
        (orjson.dumps({"id": live}), orjson.dumps({"before": None, "after": toast, "source": src, "op": "u"})),
        (b'{"id": 4}', orjson.dumps({"before": None, "after": unmapped, "source": dict(src, lsn=90_000_064), "op": "u"})),
        (b'{"id": 6}', b"{not json"),
    ]
    for key, value in tail:
        p = orjson.loads(key)["id"] % 2 if key.startswith(b'{"id"') else 0
        out.append(Record(TOPIC, p, offsets[p], key, value))
        offsets[p] += 1
    return out, live


class ListConsumer:
    """Hands out fixed batches (the real consumer is covered by the e2e suite)."""

    def __init__(self, batches: list[list[Record]]) -> None:
        self.batches = list(batches)

    def set_quiesce(self, wait) -> None:
        self.quiesce = wait

    def poll(self, timeout_ms: int = 0) -> list[Record]:
        return self.batches.pop(0) if self.batches else []

    def lag(self):
        return {(TOPIC, 0): len(self.batches)}

    def assignment(self):
        return {(TOPIC, 0)}

    def group_stable(self):
        return True

    def commit_hint(self, offsets) -> None:
        pass


@pytest.fixture(params=["duckdb", "postgres"])
def backends(request, tmp_path):
    made = []
    for name in ("inprocess", "pool"):
        if request.param == "duckdb":
            made.append(DuckDbBackend(tmp_path / f"{name}.duckdb"))
        else:
            cluster, conninfo = request.getfixturevalue("pg_server")
            db = f"pool_{next(_dbs)}"
            cluster.psql(f"CREATE DATABASE {db}")
            made.append(PostgresBackend(conninfo.replace("dbname=postgres", f"dbname={db}")))
    yield made
    for b in made:
        b.close()


def _dump(backend) -> dict:
    out = {}
    for table in ("orders_v1", "orders_v2"):
        cols = [r[0] for r in backend.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'reporting' "
            f"AND table_name = '{table}' AND column_name <> '_ingested_at' ORDER BY ordinal_position")]
        out[table] = backend.query(f"SELECT {', '.join(cols)} FROM reporting.{table} ORDER BY 1")
    out["dead_letters"] = backend.query("SELECT topic, kafka_partition, kafka_offset, stage, reason, target_table "
                                        "FROM _pipeline.dead_letters ORDER BY 1, 2, 3, 6")
    out["offsets"] = backend.query("SELECT topic, kafka_partition, next_offset FROM _pipeline.offsets ORDER BY 1, 2")
    return out


def test_planner_processes_apply_exactly_what_in_process_planning_applies(backends):
    parts = load_parts(bundled_estate())
    records, live = _records()
    batches = [records[i:i + 250] for i in range(0, len(records), 250)]
    inprocess, pooled = backends
    for b in backends:
        b.ensure_schema(list(parts.contracts.values()))
    stats = Worker(inprocess, ListConsumer(batches), parts.plan, "g", say=lambda _m: None).run(
        until_caught_up=True, install_signals=False)
    with PlannerPool(2, functools.partial(load_parts, bundled_estate()), parts.contracts) as pool:
        pool_stats = Worker(pooled, ListConsumer(batches), parts.plan, "g", say=lambda _m: None, pool=pool).run(
            until_caught_up=True, install_signals=False)
    a, b = _dump(inprocess), _dump(pooled)
    assert (pool_stats.batches, pool_stats.events, pool_stats.rows, pool_stats.dead_letters) == (
        stats.batches, stats.events, stats.rows, stats.dead_letters)
    assert pool_stats.plan_s > 0  # the planners' own time is reported
    assert a == b
    # the run did exercise what it claims to: many rows, deletes, the TOAST keep, and both dead letters
    assert len(a["orders_v2"]) > 300 and stats.rows > 1000
    assert {(r[3], r[5]) for r in a["dead_letters"]} >= {("decode", None), ("project", "orders_v1"),
                                                          ("project", "orders_v2")}
    assert dict(((t, p), o) for t, p, o in a["offsets"]) == {
        (TOPIC, p): 1 + max(r.offset for r in records if r.partition == p) for p in (0, 1)}
    # the TOAST update changed the status but kept the stored sales channel (not the placeholder)
    assert pooled.query(f"SELECT order_status, sales_channel FROM reporting.orders_v2 WHERE order_id = {live}") == [
        ("PAID", "web")]


def _broken_factory():
    raise ValueError("projection file broken on purpose")


def test_a_planner_that_cannot_start_says_why():
    parts = load_parts(bundled_estate())
    with pytest.raises(RuntimeError, match="planner processes could not start: ValueError: projection file broken"):
        PlannerPool(1, _broken_factory, parts.contracts)


def test_planners_die_with_a_killed_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import functools, time
        from pipelines.apply.planner_pool import PlannerPool
        from pipelines.apply.runner import load_parts
        from tests.support.estate import bundled_estate
        if __name__ == "__main__":
            estate = bundled_estate()
            pool = PlannerPool(2, functools.partial(load_parts, estate), load_parts(estate).contracts)
            print("ready", flush=True)
            time.sleep(300)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], cwd=REPO_ROOT, stdout=subprocess.PIPE,  # noqa: S603
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        assert parent.stdout.readline().strip() == b"ready"
        children = psutil.Process(parent.pid).children(recursive=True)
        assert len([c for c in children if "spawn_main" in " ".join(c.cmdline())]) == 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"processes left after kill -9 of their parent: {left}"
    finally:
        if parent.poll() is None:
            parent.kill()
