"""Schedules: dbt build (hourly in the example estate) and reconciliation (daily).

Cron expressions and their time zone come from the estate's `dagster.schedules` (dbt_build, reconcile,
timezone), read when the code location loads (Dagster needs them to list ticks; restart the UI after
changing them). `reconcile: null` in the estate turns the reconciliation schedule off.
"""


import dagster as dg

from pipelines.config.model import Schedules
from pipelines.defs.jobs import DBT_JOB, RECONCILE_JOB


def build_schedules(schedules: Schedules, with_reconcile: bool) -> list[dg.ScheduleDefinition]:
    """The schedules of `schedules` (the estate's dagster.schedules); reconciliation only when some
    table can be reconciled (`with_reconcile`) and the estate gives it a cron expression."""
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
    return out
