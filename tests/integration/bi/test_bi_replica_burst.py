"""The last changes of a burst reach the DuckDB read replica without new traffic.

Issue: the replica was only published after a batch that applied rows, so a change applied less than
`every_s` after the previous publication stayed out of it until more traffic came (two inserts 4 s apart:
35 s later the replica had only the first). The worker also calls the publisher on idle polls, so the end
of a burst is published once `every_s` have passed. A fake clock drives the publisher and the fake
consumer (an empty poll "waits" its 300 ms timeout on that clock): nothing sleeps.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.apply.runner import load_parts
from pipelines.apply.worker import Worker
from pipelines.bi.reader import open_replica
from pipelines.bi.replica import ReplicaPublisher, pipeline_replica_path
from pipelines.cdc.events import Record
from pipelines.cdc.recordfile import load_records
from pipelines.settings import REPO_ROOT
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration

EVERY_S = 10.0
POLL_S = 0.3
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "events"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BurstConsumer:
    """Returns each scripted batch of records once the fake time reaches it; an empty poll advances the
    clock by its timeout. Every poll first waits until the batch in flight is applied (`quiesce`), so
    time moves only between applied batches. Stops the worker at `stop_at`."""

    def __init__(self, clock: FakeClock, script: list[tuple[float, list[Record]]], stop_at: float,
                 at_poll=None) -> None:
        self.clock, self.script, self.stop_at, self.at_poll = clock, list(script), stop_at, at_poll
        self.worker: Worker | None = None
        self.quiesce = lambda: None

    def set_quiesce(self, wait) -> None:
        self.quiesce = wait

    def poll(self, timeout_ms: int = 0) -> list[Record]:
        self.quiesce()
        if self.at_poll:
            self.at_poll(self.clock.now - 1000.0)
        if self.script and self.script[0][0] <= self.clock.now - 1000.0:
            return self.script.pop(0)[1]
        self.clock.now += timeout_ms / 1000
        if self.clock.now - 1000.0 >= self.stop_at:
            self.worker.stop()
        return []

    def lag(self):
        return {}

    def assignment(self):
        return set()

    def commit_hint(self, _offsets) -> None:
        pass


def replica_orders(target: Path) -> list[int]:
    con = open_replica(target)
    try:
        return [r[0] for r in con.execute("SELECT order_id FROM reporting.orders_v2 ORDER BY 1").fetchall()]
    finally:
        con.close()


def test_the_last_batch_of_a_burst_is_published_on_idle_polls(tmp_path):
    estate = bundled_estate()
    parts = load_parts(estate)
    records = load_records(FIXTURES / "pg_orders.json")
    first, second = records[0], records[3]  # order 1001 (snapshot read), then order 1002 (insert)
    assert (first.topic, second.topic) == ("orders.public.orders", "orders.public.orders")

    main = tmp_path / "reportingdb.duckdb"
    target = tmp_path / "replica" / "reportingdb.duckdb"
    backend = DuckDbBackend(main)
    backend.ensure_schema(list(parts.contracts.values()))
    clock = FakeClock()
    publisher = ReplicaPublisher(target, EVERY_S, clock=clock)  # synchronous: what was published is there
    seen: dict[str, list[int]] = {}

    def at_poll(t: float) -> None:  # what BI sees just before the first due moment, and just after it
        if 9.0 <= t < 9.3:
            seen["before"] = replica_orders(target)
        if 10.5 <= t < 10.8:
            seen["after"] = replica_orders(target)

    consumer = BurstConsumer(clock, [(0.0, [first]), (4.0, [second])], stop_at=40.0, at_poll=at_poll)
    worker = Worker(backend, consumer, parts.plan, "g", say=lambda _m: None,
                    after_batch=publisher.hook(lambda: backend.conn))
    consumer.worker = worker
    try:
        stats = worker.run(install_signals=False)  # no publisher.close(): only the worker's calls publish
    finally:
        backend.close()
    assert stats.batches == 2
    assert seen["before"] == [1001], seen  # 1002 applied at 4 s: not due then (published at 0 s)
    assert seen["after"] == [1001, 1002], seen  # published by an idle poll at 10 s, no new traffic needed
    assert publisher.publications == 2  # nothing changed after that: 20, 30, 40 s publish nothing
    assert replica_orders(target) == [1001, 1002]
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{pipeline_replica_path(target)}' AS ops (READ_ONLY)")
        assert con.execute("SELECT topic, next_offset FROM ops._pipeline.offsets").fetchall() == [
            ("orders.public.orders", 2)]  # and the operator replica has the burst's last offsets
    finally:
        con.close()


def test_publications_keep_every_s_as_their_minimum_spacing(tmp_path):
    main = tmp_path / "reportingdb.duckdb"
    target = tmp_path / "replica" / "reportingdb.duckdb"
    clock = FakeClock()
    publisher = ReplicaPublisher(target, EVERY_S, clock=clock)
    hook = None
    with duckdb.connect(str(main)) as writer:
        writer.execute("CREATE SCHEMA _pipeline; CREATE TABLE _pipeline.offsets (consumer_group VARCHAR, topic VARCHAR,"
                       " kafka_partition INTEGER, next_offset BIGINT, updated_at TIMESTAMPTZ)")
        writer.execute("INSERT INTO _pipeline.offsets VALUES ('g', 't', 0, 1, now())")
        hook = publisher.hook(lambda: writer)
        hook(True)
        assert publisher.publications == 1
        for step in range(1, 34):  # applied batches and idle polls every 0.3 s for 10 s: none is due
            clock.now += POLL_S
            if step % 5 == 0:
                writer.execute("UPDATE _pipeline.offsets SET next_offset = next_offset + 1, updated_at = now()")
            hook(step % 5 == 0)
            assert publisher.publications == 1, clock.now
        clock.now += POLL_S  # 10.2 s after the first publication: an idle poll publishes the changes
        hook(False)
        assert publisher.publications == 2
        clock.now += 100  # idle, nothing changed: no publication however long it stays idle
        hook(False)
        clock.now += 100
        hook(False)
        assert publisher.publications == 2
        writer.execute("UPDATE _pipeline.offsets SET next_offset = 99, updated_at = now()")
        hook(True)  # a batch long after the last publication: published at once
        assert publisher.publications == 3
