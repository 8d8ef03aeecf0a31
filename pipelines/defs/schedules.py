"""Schedules: dbt build (hourly by default) and reconciliation (daily).

Cron expressions come from the environment of the code location when it loads (Dagster needs them
to list ticks): REPORTING_DBT_CRON (default `0 * * * *`), REPORTING_RECONCILE_CRON (default
`30 3 * * *`), in REPORTING_SCHEDULE_TZ (default UTC).
"""


import os

import dagster as dg

from pipelines.defs.jobs import DBT_JOB, RECONCILE_JOB

DEFAULT_DBT_CRON = "0 * * * *"
DEFAULT_RECONCILE_CRON = "30 3 * * *"


def build_schedules(with_reconcile: bool) -> list[dg.ScheduleDefinition]:
    tz = os.environ.get("REPORTING_SCHEDULE_TZ", "UTC")
    dbt_cron = os.environ.get("REPORTING_DBT_CRON", DEFAULT_DBT_CRON)
    schedules = [dg.ScheduleDefinition(
        name="dbt_build_schedule", job_name=DBT_JOB, cron_schedule=dbt_cron, execution_timezone=tz,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"dbt build of every model ({dbt_cron}, {tz}; REPORTING_DBT_CRON).")]
    if with_reconcile:
        rec_cron = os.environ.get("REPORTING_RECONCILE_CRON", DEFAULT_RECONCILE_CRON)
        schedules.append(dg.ScheduleDefinition(
            name="reconcile_schedule", job_name=RECONCILE_JOB, cron_schedule=rec_cron, execution_timezone=tz,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Reconcile the contract tables with their sources ({rec_cron}, {tz}; REPORTING_RECONCILE_CRON)."))
    return schedules
