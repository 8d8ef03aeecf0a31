"""The whole MusicCorp estate end to end on the real stack.

Simulated business traffic in all four services (customers, orders, payments on PostgreSQL; warehouse
on MariaDB) plus planted canary secrets → Debezium → Kafka → pipeline → every contract table in
DuckDB. Then: every table has rows, nothing is a dead letter, `reconcile` finds zero differences,
tables no contract reads are not captured at all, and the canary values (customers.password_hash,
payments.card_token) appear in no Kafka topic and nowhere in the reporting database.
"""

from __future__ import annotations

import time
from decimal import Decimal

import duckdb
import pytest
from kafka import KafkaConsumer, TopicPartition

from estate import simulator
from estate.canary import Canaries, plant_canaries
from pipelines.apply.runner import run_pipeline
from pipelines.reconcile import reconcile
from pipelines.stack.bootstrap import service_urls

pytestmark = pytest.mark.e2e

CONTRACT_TABLES = ("customers_v1", "orders_v1", "orders_v2", "order_lines_v1", "payments_v1", "products_v1",
                   "stock_levels_v1", "shipments_v1")
UNCAPTURED_TOPICS = ("customers.public.addresses", "customers.public.pending_enrollments",
                     "payments.public.refunds", "warehouse.warehouse.reservations")
INGEST_DEADLINE_S = 300.0
STABLE_PASSES = 3  # consecutive ingest passes that change nothing = caught up


def _read(settings):
    return duckdb.connect(str(settings.duckdb_path), read_only=True)


def _signature(settings) -> tuple:
    """What changes whenever the pipeline applies anything: rows, newest position and apply time, dead letters."""
    con = _read(settings)
    try:
        sig = [con.execute(f"SELECT count(*), coalesce(max(_source_position), 0), max(_ingested_at) "
                           f"FROM reporting.{t}").fetchone() for t in CONTRACT_TABLES]
        sig.append(con.execute("SELECT count(*) FROM _pipeline.dead_letters").fetchone())
        return tuple(sig)
    finally:
        con.close()


DEAD_LETTERS_BEFORE = 0


def _max_dead_letter_id(settings) -> int:
    if not settings.duckdb_path.exists():
        return 0
    import duckdb

    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        return con.execute("SELECT coalesce(max(id), 0) FROM _pipeline.dead_letters").fetchone()[0]
    except duckdb.CatalogException:
        return 0
    finally:
        con.close()


@pytest.fixture(scope="module")
def estate_run(stack) -> tuple[simulator.SimulationReport, Canaries]:
    """Simulated traffic + canaries, ingested until the contract tables stop changing (with a deadline)."""
    urls = service_urls(stack)
    global DEAD_LETTERS_BEFORE
    DEAD_LETTERS_BEFORE = _max_dead_letter_id(stack.settings)  # other tests of the session may have left some
    report = simulator.run(urls, rate=100, duration=10, seed=3, progress=False)
    canaries = plant_canaries(urls)
    deadline = time.monotonic() + INGEST_DEADLINE_S
    last, stable = None, 0
    while stable < STABLE_PASSES:
        assert time.monotonic() < deadline, f"contract tables still changing after {INGEST_DEADLINE_S}s: {last}"
        run_pipeline(settings=stack.settings, until_caught_up=True, install_signals=False, say=lambda _m: None)
        sig = _signature(stack.settings)
        stable = stable + 1 if sig == last else 0
        last = sig
    return report, canaries


def test_simulation_touched_captured_and_uncaptured_tables(estate_run):
    report, _ = estate_run
    assert not report.errors and report.operations >= 500, report
    # registrations write addresses + pending_enrollments, reservations back stock holds: uncaptured tables
    assert all(report.per_flow.get(f, 0) > 0 for f in ("register_customer", "verify_customer", "reserve_stock",
                                                        "ship", "capture_payment")), report.per_flow


def test_every_contract_table_has_rows_and_nothing_is_a_dead_letter(stack, estate_run):
    _, canaries = estate_run
    con = _read(stack.settings)
    try:
        counts = {t: con.execute(f"SELECT count(*) FROM reporting.{t}").fetchone()[0] for t in CONTRACT_TABLES}
        assert all(counts.values()), counts
        dead = con.execute("SELECT stage, topic, reason FROM _pipeline.dead_letters WHERE id > ? LIMIT 5",
                           [DEAD_LETTERS_BEFORE]).fetchall()
        assert dead == []
        # the canary customer and payment arrived with their contract columns only
        assert con.execute("SELECT status, country_code FROM reporting.customers_v1 WHERE customer_id = ?",
                           [canaries.customer_id]).fetchone() == ("PENDING", "NL")
        assert con.execute("SELECT status, amount, currency FROM reporting.payments_v1 WHERE payment_id = ?",
                           [canaries.payment_id]).fetchone() == ("AUTHORISED", Decimal("19.99"), "EUR")
        # the hard-delete contract has no soft-delete column; the soft ones do
        cols = {t: {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'reporting' "
            "AND table_name = ?", [t]).fetchall()} for t in ("stock_levels_v1", "shipments_v1")}
        assert "_deleted_at" not in cols["stock_levels_v1"] and "_deleted_at" in cols["shipments_v1"]
    finally:
        con.close()


def test_reconcile_finds_zero_differences(stack, estate_run):
    results = {r.table: r for r in reconcile(stack.settings)}
    assert set(CONTRACT_TABLES) <= set(results), sorted(results)
    for name in CONTRACT_TABLES:
        r = results[name]
        assert r.error is None and r.skipped is None, f"{name}: {r.error or r.skipped}"
        assert r.differences == 0, (f"{name}: missing {r.missing} extra {r.extra} different {r.different} "
                                    f"invalid {r.invalid}: {(r.missing_samples + r.extra_samples + r.different_samples)[:3]}")
        assert r.source_rows == r.reporting_rows > 0, name


def _all_topic_records(bootstrap: str, timeout: float = 120.0):
    """Every record of every topic (internal ones included), from the beginning up to the current end."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             exclude_internal_topics=False, auto_offset_reset="earliest",
                             fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024,
                             consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition(t, p) for t in sorted(consumer.topics())
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        consumer.assign(sorted(pending, key=lambda tp: (tp.topic, tp.partition)))
        consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, f"topics not read to the end in {timeout}s: {sorted(pending)[:5]}"
            for tp, messages in consumer.poll(timeout_ms=1000, max_records=50_000).items():
                yield from ((tp.topic, m) for m in messages)
            pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
    finally:
        consumer.close()


def test_canaries_appear_in_no_kafka_topic(stack, estate_run):
    _, canaries = estate_run
    con = _read(stack.settings)
    try:  # positive control: the canary customer's e-mail is a contract column, so it IS in Kafka
        (email,) = con.execute("SELECT email FROM reporting.customers_v1 WHERE customer_id = ?",
                               [canaries.customer_id]).fetchone()
    finally:
        con.close()
    needles = [v.encode() for v in canaries.values]
    topics, records, leaks, control = set(), 0, [], 0
    for topic, m in _all_topic_records(stack.settings.kafka_bootstrap):
        topics.add(topic)
        records += 1
        blobs = [m.key or b"", m.value or b"", *(v or b"" for _, v in m.headers or ())]
        if any(n in b for n in needles for b in blobs):
            leaks.append(f"{topic}[{m.partition}]@{m.offset}")
        control += any(email.encode() in b for b in blobs)
    # the search really covered the change topics of all four services, and can find a value
    assert {"customers.public.customers", "payments.public.payments", "orders.public.orders",
            "warehouse.warehouse.fulfilments"} <= topics and records > 1000, (sorted(topics), records)
    assert control >= 1, "the search did not even find the canary customer's e-mail"
    assert leaks == [], f"canary found in Kafka: {leaks[:10]}"


def test_canaries_appear_nowhere_in_the_reporting_db(stack, estate_run):
    _, canaries = estate_run
    con = _read(stack.settings)
    try:
        columns = con.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                              "WHERE data_type IN ('VARCHAR', 'JSON', 'BLOB')").fetchall()
        assert any(s == "reporting" for s, _, _ in columns) and any(s == "_pipeline" for s, _, _ in columns)
        for schema, table, column in columns:
            for needle in canaries.values:
                hits = con.execute(f'SELECT count(*) FROM "{schema}"."{table}" '
                                   f'WHERE CAST("{column}" AS VARCHAR) LIKE ?', [f"%{needle}%"]).fetchone()[0]
                assert hits == 0, f"canary found in {schema}.{table}.{column}"
    finally:
        con.close()


def test_tables_no_contract_reads_are_not_captured(stack, estate_run):
    """addresses, pending_enrollments, refunds and reservations change during the simulation, but the
    connectors capture only projected tables, so they have no topic (and cause no dead letters)."""
    consumer = KafkaConsumer(bootstrap_servers=stack.settings.kafka_bootstrap, group_id=None)
    try:
        topics = consumer.topics()
    finally:
        consumer.close()
    assert not set(UNCAPTURED_TOPICS) & topics, sorted(topics)
