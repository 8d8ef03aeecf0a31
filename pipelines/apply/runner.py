"""Wiring for `reporting stream` / `reporting ingest` and the Dagster ingest assets.

Builds the real parts from configuration: contracts, projections, planner, reporting backend,
Kafka consumer, dead-letter topic producer, then hands them to the Worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.apply.backend import ApplyBatch, Backend
from pipelines.apply.convert import apply_batch
from pipelines.apply.worker import RunStats, Worker
from pipelines.cdc.plan import Planner
from pipelines.contract.model import Contract, load_contracts
from pipelines.projection import load_projections
from pipelines.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

DEFAULT_GROUP = "reporting-pipeline"
DEAD_LETTER_TOPIC = "_reporting.dead_letters"


def open_backend(settings: Settings, wait_s: float | None = None, say: Callable[[str], None] | None = None) -> Backend:
    """The configured reporting backend (REPORTING_BACKEND=duckdb|postgres).

    When the database is unavailable (DuckDB file locked by another process, PostgreSQL down) this
    waits with backoff up to `wait_s` seconds (REPORTING_OPEN_WAIT_S, default 0 = fail at once),
    printing what it waits for, then fails with one readable line.
    """
    import os
    import time

    if wait_s is None:
        wait_s = float(os.environ.get("REPORTING_OPEN_WAIT_S", "0"))
    deadline = time.monotonic() + wait_s
    delay, last_said = 0.5, 0.0
    while True:
        try:
            return _open_backend_once(settings)
        except Exception as exc:  # noqa: BLE001 - classified below
            text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            unavailable = any(m in text.lower() for m in ("lock", "connection", "could not connect", "refused"))
            if not unavailable or time.monotonic() + delay > deadline:
                raise RuntimeError(f"reporting DB ({settings.backend}) unavailable: {text}") from exc
            if say and time.monotonic() - last_said > 10:
                say(f"waiting for the reporting DB ({settings.backend}): {text}")
                last_said = time.monotonic()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _open_backend_once(settings: Settings) -> Backend:
    if settings.backend == "duckdb":
        from pipelines.apply.duckdb_backend import DuckDbBackend

        return DuckDbBackend(settings.duckdb_path)
    if settings.backend == "postgres":
        from pipelines.apply.postgres_backend import PostgresBackend

        return PostgresBackend(reporting_pg_conninfo(settings))
    raise ValueError(f"REPORTING_BACKEND={settings.backend!r}: expected 'duckdb' or 'postgres'")


def reporting_pg_conninfo(settings: Settings, role: str = "reporting_writer") -> str:
    from pipelines.stack import secrets

    sec = secrets.load(settings)
    password = sec["REPORTING_PG_PASSWORD" if role == "reporting_writer" else "REPORTING_PG_BI_PASSWORD"]
    return (f"host={settings.host} port={settings.ports['reporting_pg']} dbname=reporting "
            f"user={role} password={password}")


@dataclass
class PipelineParts:
    contracts: dict[str, Contract]
    planner: Planner
    source_tables: dict[str, str]
    prefixes: set[str]

    def plan(self, records) -> ApplyBatch:
        return apply_batch(self.planner.plan_records(records), self.contracts, self.source_tables)


def load_parts(connectors_root: Path | None = None) -> PipelineParts:
    """Contracts + projections (from `connectors_root`, default the repo's connectors/) + planner."""
    contracts = {c.physical_name: c for c in load_contracts() if c.status != "retired"}
    projections = load_projections(connectors_root or REPO_ROOT / "connectors")
    planner = Planner(projections, contracts)
    source_tables = {topic: t.source_table for topic, t in projections.items()}
    prefixes = {topic.split(".", 1)[0] for topic in projections}
    return PipelineParts(contracts, planner, source_tables, prefixes)


def planner_processes(value: int | None = None) -> int:
    """Planner processes to use: `value`, else REPORTING_PLANNERS, else 0 (plan on the polling thread)."""
    import os

    if value is None:
        raw = os.environ.get("REPORTING_PLANNERS", "0").strip() or "0"
        if not raw.isdigit():
            raise ValueError(f"REPORTING_PLANNERS={raw!r}: expected a number of processes (0 = none)")
        value = int(raw)
    if not 0 <= value <= 16:
        raise ValueError(f"planner processes: {value} is out of range 0..16")
    return value


def _dead_letter_producer(settings: Settings) -> Callable[[ApplyBatch], None]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20,
                             max_request_size=4 * 1024 * 1024)

    def send(batch: ApplyBatch) -> None:
        for dl in batch.dead_letters:
            headers = [("stage", dl.stage.encode()), ("reason", dl.reason[:1000].encode()),
                       ("source.topic", dl.topic.encode()), ("source.partition", str(dl.partition).encode()),
                       ("source.offset", str(dl.offset).encode())]
            producer.send(DEAD_LETTER_TOPIC, key=dl.key, value=dl.value, headers=headers)
        producer.flush(timeout=30)

    return send


def run_pipeline(settings: Settings | None = None, until_caught_up: bool = False, group: str = DEFAULT_GROUP,
                 say: Callable[[str], None] = print, install_signals: bool = True,
                 max_records: int = 20000, replica_every: float | None = None,
                 planners: int | None = None) -> RunStats:
    """Run the pipeline worker with the configured backend; returns the run's statistics.

    `planners`: planner processes (apply/planner_pool.py; None = REPORTING_PLANNERS, default 0 =
    plan on the polling thread). Two took the DuckDB apply rate from ~39k to ~52k events/s on two
    cores; they cost a process each (~77 MB at rest, more while planning a batch) and 1–5 ms more
    per streaming batch (docs/benchmarks.md §7).

    DuckDB: while the worker holds the file no other process can open it, so a read replica for BI
    is published every `replica_every` seconds (pipelines/bi/replica.py; None = environment/default,
    0 = off) and once more when the worker stops.
    """
    import os

    from pipelines.kafka.consumer import ChangeConsumer

    settings = settings or Settings.load()
    parts = load_parts()
    planners = planner_processes(planners)
    # the worker waits for an unavailable reporting DB (locked DuckDB file, PostgreSQL restarting)
    backend = open_backend(settings, wait_s=float(os.environ.get("REPORTING_OPEN_WAIT_S", "300")), say=say)
    try:
        backend.ensure_schema(list(parts.contracts.values()))
        consumer = ChangeConsumer(settings.kafka_bootstrap, group, parts.prefixes,
                                  lambda: backend.stored_offsets(group), max_records=max_records)
        # long-lived objects (compiled projections, contracts, client state) leave the GC's view;
        # batches allocate millions of short-lived objects, so collect young generations less often
        import gc

        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        publisher = None
        if settings.backend == "duckdb":
            from pipelines.bi.replica import ReplicaPublisher

            publisher = ReplicaPublisher.from_settings(settings, every_s=replica_every)

        def after_batch(applied: bool) -> None:
            if publisher is not None and applied:
                publisher.maybe_publish(backend.conn)

        pool = None
        try:
            if planners:
                from pipelines.apply.planner_pool import PlannerPool

                pool = PlannerPool(planners, load_parts, parts.contracts)
                say(f"planning in {planners} planner process(es)")
            worker = Worker(backend, consumer, parts.plan, group, dead_letter_sink=_dead_letter_producer(settings),
                            say=say, after_batch=after_batch, pool=pool,
                            max_retries=int(os.environ.get("REPORTING_APPLY_MAX_RETRIES", "8")))
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
