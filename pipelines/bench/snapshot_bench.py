"""`reporting bench snapshot`: a large orders table, a fresh connector, time until the contract tables are complete.

The estate is bulk-loaded (`estate.simulator.bulk_load`, COPY) into separate service databases
(`<service>_snap` on each service's server), so the stack's own connectors and service databases
are left alone; the bulk load is reused when it already has enough orders. Then, with our pipeline
already running (its own process, fresh reporting target, routed like the real orders topics), a
fresh Debezium PostgreSQL connector is registered on `orders_snap` (the shipped
connectors/orders/connector.json with its own topic prefix, slot and database); measured:
- source: registration → every snapshot row in Kafka (end offsets of the two table topics);
- complete: registration → reporting.orders_v2 and order_lines_v1 hold every source row;
rows/s = (orders + order lines) / seconds. Per-process CPU and RSS for the pipeline, Connect, Kafka,
the orders and reporting databases. Afterwards the connector, its slot and its topics are removed.

Operational warning: the bulk load writes several GB of WAL on the service clusters (1M orders: the
orders database is 5.6 GB). The stack's own connectors' slots on those clusters must read through
all of it (decoding skips other databases' changes, but not reading them); with the stack's
`max_slot_wal_keep_size = 4GB` the orders connector's slot was invalidated (`wal_status = lost`)
during the 1M-order run, and that connector streams nothing afterwards. Run this benchmark last on
a stack, then `reporting stack reset`; `bench_snapshot` checks the slots at the end and says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from pipelines.bench.common import (
    ProcessSampler,
    Say,
    drop_pg_databases,
    fresh_pg_database,
    loadavg,
    stack_processes,
    stamp,
    write_results,
)
from pipelines.settings import MARIADB_SERVICES, PG_SERVICES, REPO_ROOT, Settings

SUFFIX = "_snap"


def _snap_urls(settings: Settings) -> dict[str, str]:
    from pipelines.stack.bootstrap import service_urls
    from pipelines.stack.manager import Stack

    urls = service_urls(Stack(settings))
    return {svc: url.rsplit("/", 1)[0] + f"/{svc}{SUFFIX}" for svc, url in urls.items()}


def prepare_estate(settings: Settings, orders: int, seed: int, say: Say) -> dict:
    """Create `<service>_snap` databases with the private schemas and bulk-load `orders` orders (once)."""
    import psycopg

    from estate import simulator
    from estate.services import SERVICES as ESTATE
    from pipelines.stack.bootstrap import pg_cdc_setup_sql
    from pipelines.stack.manager import Stack

    st = Stack(settings)
    for svc in PG_SERVICES:
        db = f"{svc}{SUFFIX}"
        if not st.pg[svc].psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'").strip():
            st.pg[svc].psql(f"CREATE DATABASE {db} OWNER {svc}_app")
    for svc in MARIADB_SERVICES:
        st.mariadb[svc].sql(f"CREATE DATABASE IF NOT EXISTS `{svc}{SUFFIX}` CHARACTER SET utf8mb4;\n"
                            f"GRANT ALL PRIVILEGES ON `{svc}{SUFFIX}`.* TO '{svc}_app'@'%';\nFLUSH PRIVILEGES;\n")
    urls = _snap_urls(settings)
    for name, service in ESTATE.items():
        service.create_schema(urls[name])
    st.pg["orders"].psql(pg_cdc_setup_sql("orders", ["public.orders", "public.order_lines"]), db=f"orders{SUFFIX}")
    pg_url = urls["orders"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(pg_url) as conn:
        have = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    load = None
    if have < orders:
        say(f"bulk-loading {orders - have:,} orders into orders{SUFFIX} (have {have:,}) ...")
        report = simulator.bulk_load(urls, orders - have, seed=seed, progress=True)
        load = {"rows": report.rows, "seconds": round(report.elapsed_s, 1)}
        say(f"  {report.summary()}")
    with psycopg.connect(pg_url) as conn:
        n_orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        n_lines = conn.execute("SELECT count(*) FROM order_lines").fetchone()[0]
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    return {"orders": n_orders, "order_lines": n_lines, "database_size": size, "bulk_load": load}


def _connector(prefix: str, slot: str) -> dict:
    from pipelines.stack.connect_api import load_connector

    spec = load_connector(REPO_ROOT / "connectors" / "orders" / "connector.json")
    cfg = dict(spec["config"])
    cfg.update({"database.dbname": f"orders{SUFFIX}", "topic.prefix": prefix, "slot.name": slot,
                "snapshot.mode": "initial"})
    return {"name": f"bench-{prefix}", "config": cfg}


def _topic_ends(consumer, topics: list[str]) -> int:
    from kafka import TopicPartition

    parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or [])]
    return sum(consumer.end_offsets(parts).values()) if parts else 0


def bench_snapshot(orders: int = 1_000_000, backend: str = "duckdb", batch: int = 20_000, seed: int = 1,
                   timeout: float = 5400.0, say: Say = print) -> dict:
    from kafka import KafkaConsumer

    from pipelines.stack.connect_api import ConnectClient
    from pipelines.stack.manager import Stack

    settings = Settings.load()
    at = stamp()
    load_start = loadavg()
    source = prepare_estate(settings, orders, seed, say)
    prefix = f"snap{int(time.time())}"
    slot = f"bench_{prefix}"
    topics = [f"{prefix}.public.orders", f"{prefix}.public.order_lines"]
    spec = _connector(prefix, slot)
    client = ConnectClient(settings.connect_url)
    if backend == "postgres":
        target = f"{prefix}_pg"
        fresh_pg_database(settings, target)
    else:
        target = str(settings.state_dir / "bench" / f"{prefix}_duck.duckdb")
    args = {"topic": None, "backend": backend, "batch": batch, "target": target,
            "routes": {topics[0]: "orders.public.orders", topics[1]: "orders.public.order_lines"},
            "until_counts": {"orders_v2": source["orders"], "order_lines_v1": source["order_lines"]}}
    log = settings.state_dir / "logs" / "bench-snapshot-run.log"
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    procs = stack_processes(settings)
    expected_events = source["orders"] + source["order_lines"]
    la = loadavg()
    say(f"snapshot: {source['orders']:,} orders + {source['order_lines']:,} lines ({source['database_size']}); "
        f"pipeline ({backend}) starting, then connector {spec['name']} (load {la})")
    with log.open("a") as err:
        child = subprocess.Popen([sys.executable, "-m", "pipelines.bench.apply_run", json.dumps(args)],  # noqa: S603
                                 stdout=subprocess.PIPE, stderr=err, cwd=REPO_ROOT, env=os.environ.copy())
        roots = {"pipeline": child.pid, **{k: v for k, v in procs.items()
                                           if k in ("connect", "kafka", "pg_orders", "pg_reporting")}}
        sampler = ProcessSampler(roots).start()
        time.sleep(3)  # the child subscribes first (its own start-up is not the connector's)
        t_reg = time.time()
        client.apply(spec)
        source_done = None
        last = time.monotonic()
        try:
            while child.poll() is None:
                if source_done is None and _topic_ends(consumer, topics) >= expected_events:
                    source_done = time.time()
                    say(f"  Debezium snapshot in Kafka after {source_done - t_reg:.0f}s")
                if time.time() - t_reg > timeout:
                    child.kill()
                    raise RuntimeError(f"snapshot not complete after {timeout:.0f}s")
                if time.monotonic() - last > 30:
                    say(f"  {time.time() - t_reg:.0f}s: {_topic_ends(consumer, topics):,}/{expected_events:,} "
                        "snapshot rows in Kafka")
                    last = time.monotonic()
                time.sleep(0.5)
            out = child.stdout.read()
        finally:
            processes = sampler.stop()
            client.delete(spec["name"])
    if child.returncode != 0:
        raise RuntimeError(f"snapshot pipeline failed (exit {child.returncode}); see {log}")
    run = json.loads(out.decode().strip().splitlines()[-1])
    if source_done is None:
        source_done = time.time() if _topic_ends(consumer, topics) >= expected_events else None
    consumer.close()
    seconds = run["done_at"] - t_reg
    result = {"orders": source["orders"], "order_lines": source["order_lines"], "rows": expected_events,
              "seconds": round(seconds, 1), "rows_per_s": round(expected_events / seconds),
              "source_seconds": None if source_done is None else round(source_done - t_reg, 1),
              "source_rows_per_s": None if source_done is None else round(expected_events / (source_done - t_reg)),
              "pipeline_lag_after_source_s": None if source_done is None else round(run["done_at"] - source_done, 1),
              "pipeline": run, "processes": processes}
    say(f"snapshot complete in {seconds:.0f}s = {result['rows_per_s']:,} rows/s (Debezium into Kafka: "
        f"{result['source_seconds']}s = {result['source_rows_per_s']} rows/s); pipeline peak RSS "
        f"{processes['pipeline']['peak_rss_mb']} MB, CPU {processes['pipeline']['cpu_s']}s; Connect CPU "
        f"{processes['connect']['cpu_s']}s")
    _cleanup(settings, Stack(settings), slot, topics, backend, target, say)
    lost = _lost_slots(Stack(settings))
    if lost:
        say(f"  [yellow]replication slots invalidated by the bulk load's WAL: {', '.join(lost)}; the stack's "
            "connectors on them stream nothing more: `reporting stack reset` before other benchmarks[/]")
    doc = {"settings": {"orders": orders, "backend": backend, "batch": batch, "seed": seed, "connector": spec,
                        "source": source}, "loadavg_start": load_start, "loadavg_before_register": la,
           "result": result, "slots_lost_afterwards": lost}
    path = write_results("snapshot", doc, at)
    from pipelines.bench.plot import plot_snapshot

    png = plot_snapshot(doc, at)
    say(f"results: {path.relative_to(REPO_ROOT)}; plot {png.relative_to(REPO_ROOT)}")
    return doc


def _lost_slots(st) -> list[str]:
    """`<cluster>:<slot>` of every replication slot whose WAL was removed (wal_status = lost)."""
    lost = []
    for svc, cluster in st.pg.items():
        out = cluster.psql("SELECT slot_name FROM pg_replication_slots WHERE wal_status = 'lost'")
        lost += [f"{svc}:{name}" for name in out.split()]
    return lost


def _cleanup(settings: Settings, st, slot: str, topics: list[str], backend: str, target: str, say: Say) -> None:
    """Drop the connector's slot (once inactive), its topics and the bench target."""
    from kafka.admin import KafkaAdminClient

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        active = st.pg["orders"].psql(f"SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'").strip()
        if active != "t":
            if active:
                st.pg["orders"].psql(f"SELECT pg_drop_replication_slot('{slot}')")
            break
        time.sleep(1)
    else:
        say(f"  [yellow]slot {slot} still active; drop it by hand[/]")
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        prefix = topics[0].split(".")[0]
        mine = [t for t in admin.list_topics() if t.startswith(prefix + ".") or t == prefix]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()
    if backend == "postgres":
        drop_pg_databases(settings, [target])
    else:
        for suffix in ("", ".wal"):
            try:
                os.unlink(target + suffix)
            except FileNotFoundError:
                pass
