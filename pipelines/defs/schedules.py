"""Schedules: dbt build (hourly in the example estate), reconciliation (daily) and, on the DuckLake
backend, the lake's maintenance (every 15 minutes by default).

Cron expressions and their time zone come from the estate's `dagster.schedules` (dbt_build, reconcile,
timezone) and `reporting.ducklake.maintenance.schedule`, read when the code location loads (Dagster needs
them to list ticks; restart the UI after changing them). `reconcile: null` in the estate turns the
reconciliation schedule off, `maintenance.schedule: null` the maintenance schedule.
"""


import dagster as dg

from pipelines.config.model import DuckLakeMaintenance, Schedules
from pipelines.defs.jobs import DBT_JOB, DUCKLAKE_MAINTENANCE_JOB, RECONCILE_JOB

DUCKLAKE_MAINTENANCE_SCHEDULE = "ducklake_maintenance_schedule"


def build_schedules(schedules: Schedules, with_reconcile: bool,
                    ducklake_maintenance: DuckLakeMaintenance | None = None) -> list[dg.ScheduleDefinition]:
    """The schedules of `schedules` (the estate's dagster.schedules); reconciliation only when some
    table can be reconciled (`with_reconcile`) and the estate gives it a cron expression; DuckLake
    maintenance when `ducklake_maintenance` (the estate's reporting.ducklake.maintenance, given only when
    the backend is ducklake) has a cron expression."""
    tz = schedules.timezone
    out = [dg.ScheduleDefinition(
        name="dbt_build_schedule", job_name=DBT_JOB, cron_schedule=schedules.dbt_build, execution_timezone=tz,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"dbt build of every model ({schedules.dbt_build}, {tz}; estate: dagster.schedules.dbt_build).")]
    if with_reconcile and schedules.reconcile:
        out.append(dg.ScheduleDefinition(
            name="reconcile_schedule", job_name=RECONCILE_JOB, cron_schedule=schedules.reconcile,
            execution_timezone=tz, default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Reconcile the contract tables with their sources ({schedules.reconcile}, {tz}; "
                        "estate: dagster.schedules.reconcile)."))
    if ducklake_maintenance is not None and ducklake_maintenance.schedule:
        cron = ducklake_maintenance.schedule
        out.append(dg.ScheduleDefinition(
            name=DUCKLAKE_MAINTENANCE_SCHEDULE, job_name=DUCKLAKE_MAINTENANCE_JOB, cron_schedule=cron,
            execution_timezone=tz, default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"DuckLake maintenance: compact files, expire snapshots, delete unneeded files ({cron}, {tz}; "
                        "estate: reporting.ducklake.maintenance)."))
    return out
