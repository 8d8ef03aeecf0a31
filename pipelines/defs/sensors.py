"""Sensors: consumer lag → ingest run; dead letters and connector health → check results; pool waits.

Sensors run in the daemon and read the reporting DB briefly. With DuckDB they never read while a
run holds the `reporting_db_writer` pool (DuckDB's file lock would make one of the two fail): they
skip that tick and look again at the next one.
"""


import json
from collections.abc import Mapping

import dagster as dg

from pipelines.defs.checks import (
    DEAD_LETTER_CHECK,
    dead_letter_evaluation,
    projection_feeds,
    read_dead_letters,
)
from pipelines.defs.connectors import (
    connector_asset_key,
    connector_check_evaluation,
    connector_specs,
    unreachable_state,
)
from pipelines.defs.jobs import INGEST_JOB
from pipelines.defs.resources import POOL, ReportingDbBusy, ReportingResource
from pipelines.settings import Settings


def lag_threshold(settings: Settings) -> int:
    """Total unconsumed change events above which the ingest job is requested (pipeline.lag_threshold)."""
    return settings.estate.pipeline.lag_threshold


def pool_holders(instance: dg.DagsterInstance) -> set[str]:
    """Run ids holding (or assigned) a slot of the reporting DB pool right now."""
    try:
        info = instance.event_log_storage.get_concurrency_info(POOL)
    except Exception:  # noqa: BLE001 - storages without concurrency support: nobody holds it
        return set()
    return {s.run_id for s in info.claimed_slots} | info.assigned_run_ids


def db_in_use(instance: dg.DagsterInstance, settings: Settings) -> str | None:
    """Why the sensor must not open the DuckDB file now (None: it may)."""
    if settings.backend != "duckdb":
        return None
    holders = pool_holders(instance)
    if holders:
        return f"the reporting DB is in use by run {sorted(holders)[0][:8]} (pool {POOL}); looking again next tick"
    return None


# --------------------------------------------------------------------------- consumer lag
def total_lag(stored: Mapping[tuple[str, int], int], ends: Mapping[tuple[str, int], int],
              beginnings: Mapping[tuple[str, int], int]) -> int:
    """Unconsumed events over every partition: end offset minus the stored next offset (a partition the
    pipeline never read counts from its beginning)."""
    return sum(max(0, end - stored.get(tp, beginnings.get(tp, 0))) for tp, end in ends.items())


def topic_offsets(bootstrap: str | dict, topics: list[str]) -> tuple[dict, dict]:
    """(end offsets, beginning offsets) per (topic, partition) of the existing topics; `bootstrap` is
    `pipelines.kafka.security.client_config(settings)` (or a bare bootstrap string)."""
    from kafka import KafkaConsumer, TopicPartition

    from pipelines.kafka.security import as_client_kwargs

    consumer = KafkaConsumer(**as_client_kwargs(bootstrap), enable_auto_commit=False, request_timeout_ms=10000,
                             bootstrap_timeout_ms=5000)
    try:
        existing = consumer.topics()
        tps = [TopicPartition(t, p) for t in topics if t in existing for p in consumer.partitions_for_topic(t) or ()]
        if not tps:
            return {}, {}
        ends = {(tp.topic, tp.partition): o for tp, o in consumer.end_offsets(tps).items()}
        begins = {(tp.topic, tp.partition): o for tp, o in consumer.beginning_offsets(tps).items()}
        return ends, begins
    finally:
        consumer.close()


def _active_runs(instance: dg.DagsterInstance, job_name: str) -> list:
    statuses = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED]
    return instance.get_runs(dg.RunsFilter(job_name=job_name, statuses=statuses), limit=1)


@dg.sensor(job_name=INGEST_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests an ingest_job run when the pipeline's consumer lag (unconsumed change events over "
                       "all partitions) exceeds the estate's pipeline.lag_threshold (default 100), unless one is "
                       "queued or running.")
def consumer_lag_sensor(context: dg.SensorEvaluationContext, reporting: ReportingResource):
    from pipelines.kafka.security import client_config
    from pipelines.projection import load_estate_projections

    if _active_runs(context.instance, INGEST_JOB):
        return dg.SkipReason("an ingest_job run is already queued or running")
    settings = reporting.settings()
    busy = db_in_use(context.instance, settings)
    if busy:
        return dg.SkipReason(busy)
    try:
        with reporting.reader(settings) as backend:
            stored = backend.stored_offsets(reporting.group(settings))
    except FileNotFoundError:
        stored = {}
    except ReportingDbBusy as exc:
        return dg.SkipReason(str(exc))
    topics = sorted(load_estate_projections(settings.estate))
    try:
        ends, begins = topic_offsets(client_config(settings), topics)
    except Exception as exc:  # noqa: BLE001 - Kafka down: nothing to request
        return dg.SkipReason(f"Kafka not reachable ({exc.__class__.__name__}): lag unknown")
    lag = total_lag(stored, ends, begins)
    threshold = lag_threshold(settings)
    if lag <= threshold:
        return dg.SkipReason(f"consumer lag {lag} <= threshold {threshold}")
    context.log.info(f"consumer lag {lag} > {threshold}: requesting {INGEST_JOB}")
    return dg.RunRequest(tags={"reporting/trigger": "consumer_lag", "reporting/lag": str(lag)})


# --------------------------------------------------------------------------- dead letters
@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reports the no_dead_letters check of each contract table (and an observation with the count "
                       "and the newest reason) whenever its number of pending dead letters changes.")
def dead_letter_sensor(context: dg.SensorEvaluationContext, reporting: ReportingResource):
    from pipelines.contract.model import load_contracts

    settings = reporting.settings()
    busy = db_in_use(context.instance, settings)
    if busy:
        return dg.SkipReason(busy)
    try:
        with reporting.reader(settings) as backend:
            summary = read_dead_letters(backend, projection_feeds(settings.estate))
    except (FileNotFoundError, ReportingDbBusy) as exc:
        return dg.SkipReason(str(exc))
    seen = json.loads(context.cursor) if context.cursor else {}
    now = {name: s.count for name, s in summary.items()}
    events: list = []
    for c in load_contracts(settings.estate.contracts):
        if c.status == "retired":
            continue
        name = c.physical_name
        if now.get(name, 0) == seen.get(name, 0) and context.cursor:
            continue
        s = summary.get(name)
        if s is None and not context.cursor:
            continue  # first tick: report only tables that have dead letters
        events.append(dead_letter_evaluation(name, s))
        events.append(dg.AssetObservation(asset_key=dg.AssetKey(["reporting", name]), metadata={
            "dead_letters": now.get(name, 0), "newest_dead_letter_reason": (s.newest_reason[:2000] if s else "")}))
    cursor = json.dumps(now, sort_keys=True)
    if not events:
        return dg.SensorResult(skip_reason=f"dead letters unchanged ({sum(now.values())} pending)", cursor=cursor)
    failing = [e.asset_key.path[-1] for e in events if isinstance(e, dg.AssetCheckEvaluation) and not e.passed]
    context.log.info(f"{DEAD_LETTER_CHECK}: failing for {', '.join(failing) or 'none'}")
    return dg.SensorResult(asset_events=events, cursor=cursor)


# --------------------------------------------------------------------------- connector health
def _signature(st) -> str:
    return f"{st.state}|{','.join(f'{i}:{s}' for i, s in st.tasks)}"


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reports the connector_running check of each connector whenever its state or a task's "
                       "state changes; a connector or task that is not RUNNING fails it with Connect's trace.")
def connector_health_sensor(context: dg.SensorEvaluationContext, reporting: ReportingResource):
    settings = reporting.settings()
    client = reporting.connect_client(settings)
    seen = json.loads(context.cursor) if context.cursor else {}
    now: dict[str, str] = {}
    events = []
    for service, spec in connector_specs(settings.estate).items():
        name = spec["name"]
        try:
            st = client.status(name)
        except Exception as exc:  # noqa: BLE001 - Connect down: every connector is not running
            st = unreachable_state(name, exc)
        now[name] = _signature(st)
        if seen.get(name) != now[name]:
            events.append(connector_check_evaluation(service, st))
            if not st.running:
                context.log.warning(f"{connector_asset_key(service).to_user_string()}: {st.state}")
    cursor = json.dumps(now, sort_keys=True)
    if not events:
        return dg.SensorResult(skip_reason="connector states unchanged", cursor=cursor)
    return dg.SensorResult(asset_events=events, cursor=cursor)


# --------------------------------------------------------------------------- pool waits
def wait_message(waiting_job: str, holder_run: str | None, holder_job: str | None, db: str) -> str:
    who = (f"run {holder_run[:8]} ({holder_job}) is using it" if holder_run
           else "another run is using it")
    return (f"Waiting for pool {POOL} (limit 1): {who}. Only one run at a time may write the reporting "
            f"database {db} (DuckDB allows a single writing process), so this {waiting_job} run starts when "
            f"that run finishes. Nothing to do; see Deployment → Concurrency for the pool.")


@dg.sensor(minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
           description=f"Writes a clear message into each run that waits in the queue for pool {POOL}: "
                       "which run holds the reporting DB and why runs take turns.")
def pool_wait_sensor(context: dg.SensorEvaluationContext, reporting: ReportingResource):
    instance = context.instance
    told = set(json.loads(context.cursor)) if context.cursor else set()
    queued = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]), limit=50)
    holders = sorted(pool_holders(instance))
    holder = instance.get_run_by_id(holders[0]) if holders else None
    settings = reporting.settings()
    db = {"duckdb": str(settings.duckdb_path), "postgres": "(PostgreSQL)"}.get(settings.backend, f"({settings.backend})")
    new = []
    for run in queued:
        pools = set(run.run_op_concurrency.all_pools or ()) if run.run_op_concurrency else set()
        if POOL not in pools or run.run_id in told or (holder is None and not holders):
            continue
        instance.report_engine_event(
            wait_message(run.job_name, holder.run_id if holder else None, holder.job_name if holder else None, db),
            dagster_run=run)
        new.append(run.run_id)
    live = {r.run_id for r in queued}
    cursor = json.dumps(sorted((told & live) | set(new)))
    if not new:
        return dg.SensorResult(skip_reason="no run waits for the reporting DB", cursor=cursor)
    return dg.SensorResult(skip_reason=f"told {len(new)} waiting run(s) why they wait", cursor=cursor)
