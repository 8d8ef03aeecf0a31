"""Jobs operators launch from the UI (Launchpad or the asset graph's Materialize button).

- ingest_job: drain Kafka into the contract tables until caught up (+ conformance, freshness and
  dead-letter checks). The consumer-lag sensor launches it too.
- dbt_build_job: `dbt build` of every model (dbt tests are asset checks); hourly schedule.
- reconcile_job: compare the contract tables with their sources; daily schedule.
- resnapshot_table_job: ask Debezium for an ad-hoc snapshot of one table (Kafka signal).
- replay_dead_letters_job: re-apply pending dead letters after a fix.
- publish_contract_docs_job: render the contract catalog.
- ducklake_maintenance_job (DuckLake backend only): flush, rewrite, merge, expire, clean up; on a schedule.
"""


import dagster as dg

from pipelines.connect.signals import SNAPSHOT_TYPES
from pipelines.defs.resources import POOL, ReportingResource, wait_writable, writer_pool

INGEST_JOB = "ingest_job"
DBT_JOB = "dbt_build_job"
RECONCILE_JOB = "reconcile_job"
DUCKLAKE_MAINTENANCE_JOB = "ducklake_maintenance_job"
DUCKLAKE_MAINTENANCE_POOL = "ducklake_maintenance"
"""Pool of the maintenance step: one maintenance at a time (the UI instance gives every pool one slot); it
never waits for ingest or the checks, which DuckLake lets commit beside it."""


class ResnapshotConfig(dg.Config):
    table: str
    """Contract table (`orders_v1`), contract name (`orders`, every major) or source table (`public.orders`)."""
    snapshot_type: str = "blocking"
    """`blocking` (streaming pauses while the table is re-read; needs only the Kafka signal channel) or
    `incremental` (chunks while streaming goes on; needs a signal table `signal.data.collection`, or
    `read.only=true`, which Debezium 3.6.1 PostgreSQL cannot combine with heartbeat.action.query)."""


@dg.op(description="Send Debezium an execute-snapshot signal for one table through the connector's Kafka "
                   "signal topic; the re-read rows arrive as op=r events (ingest applies them).",
       tags={"kind": "debezium"})
def resnapshot_table(context: dg.OpExecutionContext, config: ResnapshotConfig, reporting: ReportingResource) -> None:
    from pipelines.connect.signals import (
        SnapshotSignalError,
        config_problems,
        ensure_signal_topic,
        live_connector_config,
        resolve_target,
        send_signal,
        signal_topic,
        snapshot_signal,
    )
    from pipelines.defs.connectors import connector_specs
    from pipelines.kafka.security import client_config
    from pipelines.projection import load_estate_projections

    if config.snapshot_type not in SNAPSHOT_TYPES:
        raise dg.Failure(f"snapshot_type {config.snapshot_type!r}: expected one of {', '.join(SNAPSHOT_TYPES)}")
    settings = reporting.settings()
    try:
        target = resolve_target(config.table, load_estate_projections(settings.estate))
        name = connector_specs(settings.estate)[target.service]["name"]
        live = live_connector_config(reporting.connect_client(settings), name)
    except SnapshotSignalError as exc:
        raise dg.Failure(description=str(exc)) from exc
    problems = config_problems(live, config.snapshot_type)
    if problems:
        raise dg.Failure(
            description=f"connector {name} is not set up for Kafka signals: {'; '.join(problems)} "
                        f"({settings.estate.service(target.service).connector}, then materialize "
                        f"connectors/{target.service}; see docs/dagster.md)",
            metadata={"connector": name, "problems": "\n".join(problems)})
    topic = signal_topic(live)
    kafka = client_config(settings)
    ensure_signal_topic(kafka, topic)
    signal = snapshot_signal(target.source_tables, config.snapshot_type)
    offset = send_signal(kafka, topic, live["topic.prefix"], signal)
    context.log.info(f"sent {config.snapshot_type} snapshot signal {signal['id']} for {', '.join(target.source_tables)} "
                     f"to {topic}@{offset} (connector {name}); contract tables: {', '.join(target.contract_tables)}")
    context.add_output_metadata({"signal_id": signal["id"], "signal_topic": topic, "offset": offset,
                                 "source_tables": ", ".join(target.source_tables),
                                 "contract_tables": ", ".join(target.contract_tables)})


@dg.job(description="Re-snapshot one table (Debezium ad-hoc snapshot through the Kafka signal channel).",
        tags={"layer": "connector"})
def resnapshot_table_job():
    resnapshot_table()


class ReplayConfig(dg.Config):
    table: str = ""
    """Only this contract table, source table or topic; empty = every pending dead letter."""


def _replay_dead_letters(context: dg.OpExecutionContext, config: ReplayConfig, reporting: ReportingResource) -> None:
    from pipelines.apply.dead_letters import replay
    from pipelines.apply.runner import load_parts

    settings = reporting.settings()
    parts = load_parts(settings.estate)
    wait_writable(settings, say=context.log.info)
    with reporting.writer(settings) as backend:
        backend.ensure_schema(list(parts.contracts.values()))
        res = replay(backend, parts, reporting.group(settings), config.table or None)
    text = (f"replayed {res.replayed} of {res.attempted} dead letter(s) ({res.rows} row change(s) applied); "
            f"{res.still_failing} still failing")
    context.log.info(text)
    meta = {"attempted": res.attempted, "replayed": res.replayed, "still_failing": res.still_failing,
            "rows": res.rows}
    if res.still_failing:
        raise dg.Failure(description=f"{text} (reasons: reporting dlq list)", metadata=meta)
    context.add_output_metadata(meta)


def _replay_job(pool: str | None) -> dg.JobDefinition:
    @dg.op(name="replay_dead_letters", pool=pool,
           description="Re-plan and apply pending dead letters with the current projections and contracts.")
    def replay_dead_letters(context: dg.OpExecutionContext, config: ReplayConfig, reporting: ReportingResource) -> None:
        _replay_dead_letters(context, config, reporting)

    @dg.job(name="replay_dead_letters_job",
            description="Replay dead letters after fixing a projection, a contract or source data.")
    def replay_dead_letters_job():
        replay_dead_letters()

    return replay_dead_letters_job


replay_dead_letters_job = _replay_job(POOL)


def replay_job(backend: str) -> dg.JobDefinition:
    """replay_dead_letters_job for `backend`: in the writer pool, except on DuckLake (resources.writer_pool)."""
    pool = writer_pool(backend)
    return replay_dead_letters_job if pool == POOL else _replay_job(pool)


# --------------------------------------------------------------------------- DuckLake maintenance
class DuckLakeMaintenanceConfig(dg.Config):
    keep_snapshots_hours: float = -1.0
    """Every snapshot younger than this stays queryable; -1 = the estate's
    reporting.ducklake.maintenance.keep_snapshots_hours."""
    keep_daily_days: int = -1
    """Beyond that, each UTC day's last snapshot is kept this many days; -1 = the estate's keep_daily_days."""
    keep_files_hours: float = -1.0
    """Files no snapshot needs are deleted once this old; -1 = the estate's keep_files_hours."""


def maintenance_metadata(report, keep: dict) -> dict:
    """Run metadata of a maintenance: the catalog's counts before and after, what each step took."""
    meta: dict = {}
    for name in ("data_files", "delete_files", "kept_files", "scheduled_for_deletion", "snapshots"):
        meta[f"{name}_before"] = getattr(report.before, name)
        if report.after is not None:
            meta[f"{name}_after"] = getattr(report.after, name)
    meta.update({"snapshots_expired": report.snapshots_expired, "conflicts_retried": report.conflicts,
                 "step_seconds": ", ".join(f"{step} {secs:.1f}" for step, secs in report.steps.items()), **keep})
    return meta


@dg.op(pool=DUCKLAKE_MAINTENANCE_POOL, tags={"kind": "ducklake"},
       retry_policy=dg.RetryPolicy(max_retries=2, delay=10),  # a new engine, after one died (docs/ducklake.md)
       description="DuckLake maintenance (reporting ducklake maintain): flush inlined rows, rewrite files with many "
                   "deleted rows, merge small files, expire old snapshots, delete files no snapshot needs. Each step "
                   "commits on its own, beside a writing stream (a refused step is tried again).")
def ducklake_maintenance(context: dg.OpExecutionContext, config: DuckLakeMaintenanceConfig,
                         reporting: ReportingResource) -> None:
    from pipelines.apply.ducklake_backend import DuckLakeBackend
    from pipelines.apply.runner import ducklake_target
    from pipelines.ducklake.maintenance import maintain

    settings = reporting.settings()
    if settings.backend != "ducklake" or settings.ducklake is None:
        raise dg.Failure(description=f"the reporting backend is {settings.backend}, not ducklake: no lake to maintain "
                                     f"({settings.estate.path}: reporting.backend)", allow_retries=False)
    estate = settings.ducklake.maintenance
    keep = {"keep_snapshots_hours": config.keep_snapshots_hours if config.keep_snapshots_hours >= 0
            else estate.keep_snapshots_hours,
            "keep_daily_days": config.keep_daily_days if config.keep_daily_days >= 0 else estate.keep_daily_days,
            "keep_files_hours": config.keep_files_hours if config.keep_files_hours >= 0 else estate.keep_files_hours}
    target = ducklake_target(settings, say=context.log.info)
    if not target.may_exist():
        context.log.info(f"no DuckLake {target.label} yet: nothing to maintain")
        context.add_output_metadata({"lake": target.label, "maintained": False})
        return
    backend = DuckLakeBackend(target)
    try:
        report = maintain(backend, keep["keep_snapshots_hours"], keep["keep_files_hours"], say=context.log.info,
                          keep_daily_days=keep["keep_daily_days"])
    finally:
        backend.close()
    context.log.info(report.line())
    context.add_output_metadata({"lake": target.label, "maintained": True, **maintenance_metadata(report, keep)})


@dg.job(name=DUCKLAKE_MAINTENANCE_JOB, tags={"layer": "maintenance"},
        description="DuckLake: compact files and expire old snapshots, so files and snapshots stay bounded under "
                    "streaming (estate: reporting.ducklake.maintenance).")
def ducklake_maintenance_job():
    ducklake_maintenance()


def asset_jobs(ingest, dbt_assets, docs_asset, routine_checks, reconcile_checks) -> list:
    """Asset jobs over the definitions built in definitions.py."""
    ingest_sel = dg.AssetSelection.assets(ingest).without_checks()
    for c in routine_checks:
        ingest_sel = ingest_sel | dg.AssetSelection.checks(c)
    jobs = [
        dg.define_asset_job(INGEST_JOB, selection=ingest_sel,
                            description="Catch-up: drain the CDC topics into the contract tables until caught up, "
                                        "then check conformance, freshness and dead letters."),
        dg.define_asset_job(DBT_JOB, selection=dg.AssetSelection.assets(dbt_assets),
                            description="dbt build: staging views and marts, with the dbt tests as asset checks."),
        dg.define_asset_job("publish_contract_docs_job", selection=dg.AssetSelection.assets(docs_asset),
                            description="Render the Markdown catalog of the reporting contracts for BI users."),
    ]
    if reconcile_checks is not None:
        jobs.append(dg.define_asset_job(RECONCILE_JOB, selection=dg.AssetSelection.checks(reconcile_checks),
                                        description="Reconcile every fed contract table with its source table."))
    return jobs
