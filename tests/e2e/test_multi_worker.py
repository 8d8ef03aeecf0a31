"""PostgreSQL backend: two workers of one consumer group share a 2-partition topic (Kafka assigns
the partitions); the result equals what a single worker produces from the same events."""

from __future__ import annotations

import threading
import time

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from pipelines.apply.postgres_backend import PostgresBackend
from pipelines.apply.runner import load_parts, reporting_pg_conninfo
from pipelines.apply.worker import Worker
from pipelines.bench.workload import orders_changes
from pipelines.cdc.plan import Planner
from pipelines.kafka.consumer import ChangeConsumer
from pipelines.projection import load_estate_projections
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.e2e


def _backend(stack, db: str) -> PostgresBackend:
    stack.reporting_pg.psql(f"DROP DATABASE IF EXISTS {db}")
    stack.reporting_pg.psql(f"CREATE DATABASE {db} OWNER reporting_writer")
    settings = stack.settings.with_backend("postgres")
    return PostgresBackend(reporting_pg_conninfo(settings).replace("dbname=reporting", f"dbname={db}"))


def _worker(stack, topic: str, group: str, db: str, parts) -> tuple[Worker, PostgresBackend]:
    backend = PostgresBackend(reporting_pg_conninfo(stack.settings.with_backend("postgres"))
                              .replace("dbname=reporting", f"dbname={db}"))
    consumer = ChangeConsumer(stack.settings.kafka_bootstrap, group, [topic.split(".")[0]],
                              lambda: backend.stored_offsets(group), max_records=2000)
    return Worker(backend, consumer, parts.plan, group, say=lambda _m: None), backend


def test_two_workers_share_partitions_and_match_a_single_worker(stack):
    topic = f"multi{int(time.time())}.public.orders"
    admin = KafkaAdminClient(bootstrap_servers=stack.settings.kafka_bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    parts = load_parts(bundled_estate())
    orders = load_estate_projections(stack.settings.estate)["orders.public.orders"]
    parts.planner = Planner({topic: orders}, parts.contracts)
    parts.source_tables = {topic: orders.source_table}

    for db in ("multi_two", "multi_one"):
        _backend(stack, db).close()
    setup = PostgresBackend(reporting_pg_conninfo(stack.settings.with_backend("postgres"))
                            .replace("dbname=reporting", "dbname=multi_two"))
    setup.ensure_schema(list(parts.contracts.values()))
    setup.close()

    workers = [_worker(stack, topic, "two-workers", "multi_two", parts) for _ in range(2)]
    results = [None, None]

    def run(i: int) -> None:
        w, _b = workers[i]
        results[i] = w.run(until_caught_up=False, install_signals=False)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    # both members must be in the group (one partition each) before any event exists, or on a slow
    # machine the first member could finish everything before the second joins
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sorted(len(w.consumer.assignment()) for w, _b in workers) != [1, 1]:
        time.sleep(0.2)
    assert sorted(len(w.consumer.assignment()) for w, _b in workers) == [1, 1]
    producer = KafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap, linger_ms=20)
    for key, value in orders_changes(60_000, n_keys=8_000, seed=5):
        producer.send(topic, key=key, value=value)  # same key → same partition: per-key order kept
    producer.flush()
    producer.close()
    # stream mode: both members join the group and Kafka splits the partitions between them;
    # stop both once the stored offsets reach the end of both partitions
    from kafka import KafkaConsumer, TopicPartition

    probe = KafkaConsumer(bootstrap_servers=stack.settings.kafka_bootstrap)
    ends = {(tp.topic, tp.partition): o for tp, o in
            probe.end_offsets([TopicPartition(topic, 0), TopicPartition(topic, 1)]).items()}
    probe.close()
    check = PostgresBackend(reporting_pg_conninfo(stack.settings.with_backend("postgres"))
                            .replace("dbname=reporting", "dbname=multi_two"))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and check.stored_offsets("two-workers") != ends:
        time.sleep(0.5)
    check.close()
    # Kafka's copy of the group's offsets (what lag tools read) reaches what was applied too
    admin = KafkaAdminClient(bootstrap_servers=stack.settings.kafka_bootstrap)
    try:
        deadline = time.monotonic() + 30
        while True:
            committed = {(tp.topic, tp.partition): m.offset for tp, m in
                         admin.list_group_offsets({"two-workers": None}).get("two-workers", {}).items()}
            if committed == ends or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert committed == ends
    finally:
        admin.close()
    for w, _b in workers:
        w.stop()
    for t in threads:
        t.join(timeout=120)
    # both workers took part: each applied events of the partition Kafka gave it
    assert all(r is not None and r.events > 0 for r in results), results
    assert sum(r.events for r in results) >= 60_000
    for w, b in workers:
        w.consumer.close()
        b.close()

    single_backend = PostgresBackend(reporting_pg_conninfo(stack.settings.with_backend("postgres"))
                                     .replace("dbname=reporting", "dbname=multi_one"))
    single_backend.ensure_schema(list(parts.contracts.values()))
    consumer = ChangeConsumer(stack.settings.kafka_bootstrap, "one-worker", [topic.split(".")[0]],
                              lambda: single_backend.stored_offsets("one-worker"), max_records=5000)
    Worker(single_backend, consumer, parts.plan, "one-worker", say=lambda _m: None).run(
        until_caught_up=True, install_signals=False)
    consumer.close()

    q = ('SELECT order_id, order_status, total_amount, "_source_position", "_deleted_at" IS NULL '
         "FROM reporting.orders_v2 ORDER BY order_id")
    two = PostgresBackend(reporting_pg_conninfo(stack.settings.with_backend("postgres"))
                          .replace("dbname=reporting", "dbname=multi_two"))
    try:
        assert two.query(q) == single_backend.query(q)
        assert len(two.query(q)) > 1000
        assert sorted(p for (_t, p) in two.stored_offsets("two-workers")) == [0, 1]
    finally:
        two.close()
        single_backend.close()
