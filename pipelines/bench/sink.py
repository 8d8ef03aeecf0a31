"""The peer: Debezium's JDBC sink connector (3.5.0.Final) on the stack's Kafka Connect worker.

Reads the schema-enabled copy of the benchmark topic (see workload.with_schemas) into a fresh
PostgreSQL database on the reporting cluster, in upsert mode with deletes, primary key from the
record key, table auto-created (schema.evolution=basic). The sink consumes Debezium envelopes
natively: it writes the `after` image, i.e. the private row shape ExtractNewRecordState would give.

Credentials: the sink logs in as role `bench_sink`, whose password is the orders CDC password, which
the Connect worker already has in its environment (${env:REPORTING_ORDERS_DB_PASSWORD}), so no
password goes into the connector config. Progress is observed from outside by polling the target
table's `count(*)` and `sum(total_cents)` against the expected final state (exact end detection,
unlike the sink's consumer-group offsets, which Connect commits only every 5 s).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from pipelines.bench.common import ProcessSampler, Say, fresh_pg_database, stack_processes
from pipelines.connect.client import ConnectClient
from pipelines.settings import Settings

SINK_CLASS = "io.debezium.connector.jdbc.JdbcSinkConnector"
SINK_ROLE = "bench_sink"
SINK_TABLE = "orders_sink"


@dataclass(frozen=True)
class SinkSettings:
    """The knobs we tune; defaults are the connector's own defaults."""

    batch_size: int = 500
    max_poll_records: int = 500
    reduction_buffer: bool = False
    unnest_insert: bool = False
    rewrite_batched: bool = False

    def label(self) -> str:
        extra = [n for n, on in (("reduction", self.reduction_buffer), ("unnest", self.unnest_insert),
                                 ("rewrite", self.rewrite_batched)) if on]
        return f"batch {self.batch_size}/poll {self.max_poll_records}" + (f" +{'+'.join(extra)}" if extra else "")


JACKSON_MODULES = ("jackson-module-blackbird", "jackson-module-jakarta-xmlbind-annotations", "jackson-datatype-jdk8")
"""Jackson modules that Kafka 4.3's runtime classpath registers as `com.fasterxml.jackson.databind.Module` services."""


def check_plugin(settings: Settings) -> None:
    """Fail early, with the fix, when the sink plugin would die on Kafka 4's Jackson module services.

    Kafka 4.3's runtime classpath registers three Jackson modules (JACKSON_MODULES, version 2.21) as
    `Module` services; the sink's plugin folder bundles jackson-databind 2.19, and Hibernate's
    `findAndRegisterModules()` (at task start) then fails with "<Module> not a subtype". Copies of
    those modules at the plugin's own Jackson version in the plugin folder fix it (the pom should add
    them as dependencies of connectors/jvm/debezium-jdbc at the plugin's jackson-databind version).
    """
    plugin = settings.jvm_dir / "plugins" / "debezium-jdbc"
    databind = sorted(plugin.glob("jackson-databind-*.jar"))
    if not databind:
        return
    version = databind[0].name.removeprefix("jackson-databind-").removesuffix(".jar")
    missing = [m for m in JACKSON_MODULES if not (plugin / f"{m}-{version}.jar").exists()]
    if missing:
        raise RuntimeError(f"{plugin}: add {', '.join(f'{m}-{version}.jar' for m in missing)} (Maven Central) and "
                           "restart Connect, or the JDBC sink task fails with '... Module not a subtype'")


def ensure_sink_role(settings: Settings) -> str:
    """Create/refresh role bench_sink on the reporting cluster; returns its password."""
    from pipelines.stack import secrets
    from pipelines.stack.manager import Stack

    password = secrets.load(settings)["REPORTING_ORDERS_CDC_PASSWORD"]
    lit = "'" + password.replace("'", "''") + "'"
    Stack(settings).reporting_pg.psql(f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{SINK_ROLE}') THEN
    CREATE ROLE {SINK_ROLE} LOGIN PASSWORD {lit};
  ELSE ALTER ROLE {SINK_ROLE} PASSWORD {lit}; END IF;
END $$;
""")
    return password


def sink_config(settings: Settings, topic: str, dbname: str, s: SinkSettings) -> dict:
    url = f"jdbc:postgresql://{settings.host}:{settings.ports['reporting_pg']}/{dbname}"
    if s.rewrite_batched:
        url += "?reWriteBatchedInserts=true"
    return {
        "connector.class": SINK_CLASS,
        "tasks.max": "1",
        "topics": topic,
        "connection.url": url,
        "connection.username": SINK_ROLE,
        "connection.password": "${env:REPORTING_ORDERS_DB_PASSWORD}",
        "connection.pool.min_size": "1",
        "connection.pool.max_size": "4",
        "insert.mode": "upsert",
        "delete.enabled": "true",
        "primary.key.mode": "record_key",
        "schema.evolution": "basic",
        "collection.name.format": SINK_TABLE,
        "batch.size": str(s.batch_size),
        "use.reduction.buffer": str(s.reduction_buffer).lower(),
        "dialect.postgres.unnest.insert.enabled": str(s.unnest_insert).lower(),
        "consumer.override.max.poll.records": str(s.max_poll_records),
        "consumer.override.auto.offset.reset": "earliest",
        "consumer.override.max.partition.fetch.bytes": str(16 * 1024 * 1024),
        "consumer.override.fetch.max.bytes": str(64 * 1024 * 1024),
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "true",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "true",
        "errors.tolerance": "none",
    }


@dataclass
class SinkRun:
    settings_label: str
    events: int
    seconds_wall: float
    seconds_active: float
    events_per_s: float
    events_per_s_wall: float
    rows_final: int
    processes: dict
    dbname: str


def run_sink(settings: Settings, topic: str, dbname: str, s: SinkSettings, expected: tuple[int, int], events: int,
             say: Say, timeout: float = 3600.0, poll_s: float = 0.2) -> SinkRun:
    """Register the sink on `topic` into a fresh database `dbname`, wait until the table equals the
    expected (rows, sum of total_cents), delete the connector. Times: wall = registration → done;
    active = first rows visible → done (the headline; it excludes the task's start-up)."""
    check_plugin(settings)
    password = ensure_sink_role(settings)
    fresh_pg_database(settings, dbname, owner=SINK_ROLE)
    name = f"bench-sink-{dbname}"
    client = ConnectClient(settings.connect_url)
    client.delete(name)
    conn = psycopg.connect(f"host={settings.host} port={settings.ports['reporting_pg']} dbname={dbname} "
                           f"user={SINK_ROLE} password={password}", autocommit=True)
    procs = stack_processes(settings)
    sampler = ProcessSampler({k: v for k, v in procs.items() if k in ("connect", "kafka", "pg_reporting")}).start()
    t0 = time.monotonic()
    client.apply({"name": name, "config": sink_config(settings, topic, dbname, s)})
    first = None
    last_say = t0
    rows = 0
    try:
        while True:
            now = time.monotonic()
            if now - t0 > timeout:
                raise RuntimeError(f"JDBC sink not done after {timeout:.0f}s ({rows:,} rows)")
            try:
                rows, cents = conn.execute(f"SELECT count(*), coalesce(sum(total_cents), 0) FROM {SINK_TABLE}").fetchone()
            except psycopg.errors.UndefinedTable:
                rows, cents = 0, 0
            if rows and first is None:
                first = now
            if (rows, int(cents)) == expected:
                done = now
                break
            if now - last_say > 10:
                st = client.status(name)
                if st.state == "FAILED" or any(x == "FAILED" for _, x in st.tasks):
                    trace = (st.trace or "").strip().splitlines()
                    cause = next((ln for ln in reversed(trace) if ln.startswith("Caused by")), trace[0] if trace else "")
                    raise RuntimeError(f"JDBC sink FAILED: {cause[:300]}")
                say(f"  sink [{s.label()}]: {rows:,} rows after {now - t0:.0f}s")
                last_say = now
            time.sleep(poll_s)
    finally:
        processes = sampler.stop()
        client.delete(name)
        conn.close()
    active = max(1e-9, done - (first or t0))
    wall = done - t0
    return SinkRun(s.label(), events, round(wall, 2), round(active, 2), round(events / active),
                   round(events / wall), rows, processes, dbname)


def fetch_sink_rows(settings: Settings, dbname: str) -> list[tuple]:
    from pipelines.bench.compare import SINK_SELECT

    with psycopg.connect(_sink_conninfo(settings, dbname)) as conn:
        return conn.execute(SINK_SELECT.format(table=SINK_TABLE)).fetchall()


def _sink_conninfo(settings: Settings, dbname: str) -> str:
    from pipelines.stack import secrets

    password = secrets.load(settings)["REPORTING_ORDERS_CDC_PASSWORD"]
    return (f"host={settings.host} port={settings.ports['reporting_pg']} dbname={dbname} "
            f"user={SINK_ROLE} password={password}")
