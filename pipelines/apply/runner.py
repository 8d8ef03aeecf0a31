"""Wiring for `reporting stream` / `reporting ingest` and the Dagster ingest assets.

Builds the real parts from configuration: contracts, projections, planner, reporting backend,
Kafka consumer, dead-letter topic producer, then hands them to the Worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.apply.backend import ApplyBatch, Backend
from pipelines.apply.convert import apply_batch
from pipelines.apply.worker import RunStats, Worker, stored_offsets_reader
from pipelines.cdc.plan import Planner
from pipelines.config.model import Estate
from pipelines.contract.model import Contract, load_contracts
from pipelines.projection import load_estate_projections
from pipelines.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_GROUP = "reporting-pipeline"
DEAD_LETTER_TOPIC = "_reporting.dead_letters"


def open_backend(settings: Settings, wait_s: float | None = None, say: Callable[[str], None] | None = None) -> Backend:
    """The configured reporting backend (REPORTING_BACKEND=duckdb|postgres).

    When the database is unavailable (DuckDB file locked by another process, PostgreSQL down) this
    waits with backoff up to `wait_s` seconds (default 0 = fail at once; workers pass pipeline.open_wait_s),
    printing what it waits for, then fails with one readable line.
    """
    import time

    if wait_s is None:
        wait_s = 0.0
    from pipelines.apply.retry import first_line, retrying_for

    last_said = 0.0

    def waiting(exc: BaseException, _attempt: int, _delay: float) -> None:
        nonlocal last_said
        if say and time.monotonic() - last_said > 10:
            say(f"waiting for the reporting DB ({settings.backend}): {first_line(exc)}")
            last_said = time.monotonic()

    # transient errors (apply/retry.py: by exception type and SQLSTATE) are retried with backoff,
    # 0.5 s doubling up to 5 s, while the next attempt would still start within wait_s
    try:
        return retrying_for(wait_s, max_wait_s=5.0, on_retry=waiting)(_open_backend_once, settings)
    except Exception as exc:  # noqa: BLE001 - permanent, or still unavailable after wait_s
        raise RuntimeError(f"reporting DB ({settings.backend}) unavailable: {first_line(exc)}") from exc


def _open_backend_once(settings: Settings) -> Backend:
    if settings.backend == "duckdb":
        from pipelines.apply.duckdb_backend import DuckDbBackend

        return DuckDbBackend(settings.duckdb_path, tuning=settings.estate.reporting.duckdb)
    if settings.backend == "postgres":
        from pipelines.apply.postgres_backend import PostgresBackend

        return PostgresBackend(reporting_pg_conninfo(settings))
    if settings.backend == "ducklake":
        from pipelines.apply.ducklake_backend import DuckLakeBackend

        return DuckLakeBackend(ducklake_target(settings))
    raise ValueError(f"REPORTING_BACKEND={settings.backend!r}: expected 'duckdb', 'postgres' or 'ducklake'")


def ducklake_target(settings: Settings, say: Callable[[str], None] | None = None):
    """Where the estate's DuckLake lives and its engine (the venv is installed on first use)."""
    from pipelines.apply.ducklake_backend import DuckLakeTarget
    from pipelines.ducklake.venv import ensure_venv, extension_files

    lake = settings.ducklake
    if lake is None:
        raise ValueError(f"{settings.estate.path}: reporting.ducklake is not declared")
    venv = ensure_venv(settings, say=say or log.info)
    postgres = password = None
    if lake.postgres_catalog is not None:
        pg = lake.postgres_catalog
        password = settings.secret(pg.login.password, "reporting.ducklake.postgres_catalog.login.password")
        postgres = f"host={pg.host} port={pg.port} dbname={pg.database} user={pg.login.user}"
    return DuckLakeTarget(catalog=lake.catalog, data_path=lake.data_path, python=venv / "bin" / "python",
                          extensions=tuple(extension_files(venv, postgres=postgres is not None)),
                          log=settings.log_dir / "ducklake-engine.log", inlining_rows=lake.inlining_rows,
                          postgres=postgres, postgres_password=password)


def reporting_pg_conninfo(settings: Settings, role: str = "writer") -> str:
    """libpq conninfo of the PostgreSQL reporting backend as the declared `writer` or BI `reader`."""
    return settings.reporting_pg_conninfo("reader" if role in ("reader", "bi_reader") else "writer")


@dataclass
class PipelineParts:
    contracts: dict[str, Contract]
    planner: Planner
    source_tables: dict[str, str]
    prefixes: set[str]

    def plan(self, records) -> ApplyBatch:
        return apply_batch(self.planner.plan_records(records), self.contracts, self.source_tables)


def load_parts(estate: Estate) -> PipelineParts:
    """The estate's live contracts + its services' projections + the planner compiled from them.

    Module-level and taking a picklable Estate, so planner processes can build their own copy."""
    contracts = {c.physical_name: c for c in load_contracts(estate.contracts) if c.status != "retired"}
    projections = load_estate_projections(estate)
    planner = Planner(projections, contracts, max_record_bytes=estate.pipeline.max_record_bytes)
    source_tables = {topic: t.source_table for topic, t in projections.items()}
    prefixes = {topic.split(".", 1)[0] for topic in projections}
    return PipelineParts(contracts, planner, source_tables, prefixes)


def planner_processes(value: int | None, settings: Settings) -> int:
    """Planner processes to use: `value`, else the estate's pipeline.planners (REPORTING_PLANNERS)."""
    if value is None:
        value = settings.estate.pipeline.planners
    if not 0 <= value <= 16:
        raise ValueError(f"planner processes: {value} is out of range 0..16")
    return value


def _dead_letter_producer(settings: Settings) -> Callable[[ApplyBatch], None]:
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    from pipelines.kafka.security import bootstrap_error, client_security

    try:
        producer = KafkaProducer(bootstrap_servers=list(settings.estate.kafka.bootstrap_servers), acks="all",
                                 linger_ms=20, max_request_size=4 * 1024 * 1024, **client_security(settings))
    except KafkaTimeoutError as exc:
        raise bootstrap_error(settings, exc) from exc

    def send(batch: ApplyBatch) -> None:
        for dl in batch.dead_letters:
            headers = [("stage", dl.stage.encode()), ("reason", dl.reason[:1000].encode()),
                       ("source.topic", dl.topic.encode()), ("source.partition", str(dl.partition).encode()),
                       ("source.offset", str(dl.offset).encode())]
            producer.send(DEAD_LETTER_TOPIC, key=dl.key, value=dl.value, headers=headers)
        producer.flush(timeout=30)

    return send


def run_pipeline(settings: Settings, until_caught_up: bool = False, group: str = DEFAULT_GROUP,
                 say: Callable[[str], None] = print, install_signals: bool = True,
                 max_records: int = 20000, replica_every: float | None = None,
                 planners: int | None = None, faults: dict[str, float] | None = None,
                 instance_id: str | None = None, metrics_port: int | None = None,
                 linger_ms: int | None = None) -> RunStats:
    """Run the pipeline worker with the configured backend; returns the run's statistics.

    `planners`: planner processes (apply/planner_pool.py; None = REPORTING_PLANNERS, default 0 =
    plan on the polling thread). Two took the DuckDB apply rate from ~39k to ~52k events/s on two
    cores; they cost a process each (~77 MB at rest, more while planning a batch) and 1–5 ms more
    per streaming batch (docs/benchmarks.md §7).

    `linger_ms`: while streaming, at most one batch is cut every `linger_ms` (None = the estate's
    pipeline.linger_ms; unset: 1,000 ms on the DuckDB file while its replica is published, else 250 ms): fewer,
    larger transactions, less CPU per event, up to that much more latency (docs/benchmarks.md §8).
    `until_caught_up` runs never linger.

    DuckDB: while the worker holds the file no other process can open it, so a read replica for BI
    is published every `replica_every` seconds (pipelines/bi/replica.py; None = environment/default,
    0 = off) and once more when the worker stops.
    """
    from functools import partial

    from pipelines.config.model import effective_linger_ms
    from pipelines.kafka.consumer import ChangeConsumer
    from pipelines.kafka.security import client_security

    pipeline = settings.estate.pipeline
    parts = load_parts(settings.estate)
    planners = planner_processes(planners, settings)
    publisher = None
    if settings.backend == "duckdb":
        from pipelines.bi.replica import ReplicaPublisher

        publisher = ReplicaPublisher.from_settings(settings, every_s=replica_every)  # None: no replica
    # neither --linger-ms nor pipeline.linger_ms: the default, longer behind a replica (config/model.py)
    lingers_for_replica = linger_ms is None and pipeline.linger_ms is None and publisher is not None
    if linger_ms is None:
        linger_ms = effective_linger_ms(pipeline.linger_ms, settings.backend, replica_on=publisher is not None)
    if linger_ms < 0:
        raise ValueError(f"linger: {linger_ms} ms is negative")
    metrics = None
    if metrics_port is not None:  # before waiting for the database: the endpoint shows a worker that waits
        from pipelines.metrics import PipelineMetrics

        metrics = PipelineMetrics(group=group, instance=instance_id or "")
        say(f"metrics on port {metrics.serve(metrics_port)} (/metrics)")
    # the worker waits for an unavailable reporting DB (locked DuckDB file, PostgreSQL restarting)
    backend = open_backend(settings, wait_s=pipeline.open_wait_s, say=say)
    try:
        backend.ensure_schema(list(parts.contracts.values()))
        # a contract table new since its source was streamed (a new major, a new target) starts full
        from pipelines.apply.backfill import request_backfills
        from pipelines.projection import load_estate_projections

        request_backfills(settings, backend, group, load_estate_projections(settings.estate), parts.contracts, say=say)
        from kafka.errors import KafkaTimeoutError

        from pipelines.kafka.security import bootstrap_error

        try:
            consumer = ChangeConsumer(list(settings.estate.kafka.bootstrap_servers), group, parts.prefixes,
                                      stored_offsets_reader(backend, group, pipeline.max_retries), max_records=max_records,
                                      security=client_security(settings), group_instance_id=instance_id,
                                      fetch_linger_ms=0 if until_caught_up else linger_ms)
        except KafkaTimeoutError as exc:
            raise bootstrap_error(settings, exc) from exc
        # long-lived objects (compiled projections, contracts, client state) leave the GC's view;
        # batches allocate millions of short-lived objects, so collect young generations less often
        import gc

        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        # called after every applied batch AND on the worker's idle polls, so the last batch of a burst
        # reaches the replica once replica_every_s have passed, without waiting for more traffic
        after_batch = publisher.hook(lambda: backend.conn) if publisher is not None else None

        pool = None
        try:
            if planners:
                from pipelines.apply.planner_pool import PlannerPool

                pool = PlannerPool(planners, partial(load_parts, settings.estate), parts.contracts)
                say(f"planning in {planners} planner process(es)")
            if lingers_for_replica and not until_caught_up:
                say(f"a batch at most every {linger_ms} ms: readers see the replica (set pipeline.linger_ms to change)")
            worker = Worker(backend, consumer, parts.plan, group, dead_letter_sink=_dead_letter_producer(settings),
                            say=say, after_batch=after_batch, pool=pool, faults=faults,
                            max_retries=pipeline.max_retries, metrics=metrics, linger_s=linger_ms / 1000.0,
                            max_records=max_records, stall_restart_s=pipeline.stall_restart_s,
                            replica_cpu=(lambda: publisher.cpu_s) if publisher is not None else None)
            stats = worker.run(until_caught_up=until_caught_up, install_signals=install_signals)
            if publisher is not None:
                publisher.close(backend.conn)
        finally:
            if pool is not None:
                pool.close()
            consumer.close()
    finally:
        backend.close()
    say(stats.line())
    return stats
