"""The DuckLake maintenance job and schedule as Dagster definitions (present only for the ducklake backend, cron and
time zone from the estate), the writer pool that DuckLake steps do not claim, and what a run records."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from pipelines.config.model import DuckLakeMaintenance, Schedules
from pipelines.defs.jobs import (
    DUCKLAKE_MAINTENANCE_JOB,
    DUCKLAKE_MAINTENANCE_POOL,
    DuckLakeMaintenanceConfig,
    ducklake_maintenance,
    ducklake_maintenance_job,
    maintenance_metadata,
    replay_dead_letters_job,
    replay_job,
)
from pipelines.defs.resources import POOL, ReportingResource, writer_pool
from pipelines.defs.schedules import DUCKLAKE_MAINTENANCE_SCHEDULE, build_schedules
from pipelines.ducklake.maintenance import LakeFiles, MaintenanceReport, conflict

pytestmark = pytest.mark.unit


def _pools(job: dg.JobDefinition) -> set[str]:
    return {p for node in job.graph.node_defs for p in node.pools}


def test_the_maintenance_schedule_exists_only_with_a_ducklake_maintenance_section():
    schedules = Schedules(timezone="Europe/Berlin")
    without = {s.name for s in build_schedules(schedules, with_reconcile=True)}
    assert DUCKLAKE_MAINTENANCE_SCHEDULE not in without
    keep = DuckLakeMaintenance()
    made = {s.name: s for s in build_schedules(schedules, with_reconcile=True, ducklake_maintenance=keep)}
    assert set(made) == without | {DUCKLAKE_MAINTENANCE_SCHEDULE}
    s = made[DUCKLAKE_MAINTENANCE_SCHEDULE]
    assert (s.job_name, s.cron_schedule, s.execution_timezone) == (DUCKLAKE_MAINTENANCE_JOB, keep.schedule,
                                                                   "Europe/Berlin")
    assert s.default_status == dg.DefaultScheduleStatus.RUNNING


def test_the_estates_cron_is_used_and_null_turns_the_schedule_off():
    custom = build_schedules(Schedules(), with_reconcile=False,
                             ducklake_maintenance=DuckLakeMaintenance(schedule="5 */2 * * *"))
    assert [(s.name, s.cron_schedule) for s in custom if s.job_name == DUCKLAKE_MAINTENANCE_JOB] == [
        (DUCKLAKE_MAINTENANCE_SCHEDULE, "5 */2 * * *")]
    off = build_schedules(Schedules(), with_reconcile=False, ducklake_maintenance=DuckLakeMaintenance(schedule=None))
    assert all(s.job_name != DUCKLAKE_MAINTENANCE_JOB for s in off)


def test_ducklake_steps_claim_no_writer_pool_duckdb_and_postgres_keep_it():
    assert writer_pool("duckdb") == writer_pool("postgres") == POOL
    assert writer_pool("ducklake") is None
    assert replay_job("duckdb") is replay_job("postgres") is replay_dead_letters_job
    assert _pools(replay_dead_letters_job) == {POOL}
    lake_replay = replay_job("ducklake")
    assert lake_replay.name == "replay_dead_letters_job" and _pools(lake_replay) == set()


def test_the_maintenance_job_takes_turns_only_with_itself():
    assert ducklake_maintenance_job.name == DUCKLAKE_MAINTENANCE_JOB
    assert _pools(ducklake_maintenance_job) == {DUCKLAKE_MAINTENANCE_POOL} and DUCKLAKE_MAINTENANCE_POOL != POOL


def test_a_run_records_the_counts_before_and_after():
    before = LakeFiles(data_files=120, delete_files=8, kept_files=128, scheduled_for_deletion=0, snapshots=22,
                       inlined_tables=3)
    after = LakeFiles(data_files=7, delete_files=0, kept_files=40, scheduled_for_deletion=2, snapshots=5,
                      inlined_tables=3)
    report = MaintenanceReport(before=before, after=after, steps={"flush inlined data": 0.91, "merge adjacent files": 0.3},
                               conflicts=2, snapshots_expired=17)
    meta = maintenance_metadata(report, {"keep_snapshots_hours": 1, "keep_daily_days": 400, "keep_files_hours": 0.25})
    assert meta == {"data_files_before": 120, "data_files_after": 7, "delete_files_before": 8, "delete_files_after": 0,
                    "kept_files_before": 128, "kept_files_after": 40, "scheduled_for_deletion_before": 0,
                    "scheduled_for_deletion_after": 2, "snapshots_before": 22, "snapshots_after": 5,
                    "snapshots_expired": 17, "conflicts_retried": 2,
                    "step_seconds": "flush inlined data 0.9, merge adjacent files 0.3",
                    "keep_snapshots_hours": 1, "keep_daily_days": 400, "keep_files_hours": 0.25}


def test_the_maintenance_step_fails_in_one_line_on_another_backend():
    context = dg.build_op_context(resources={"reporting": ReportingResource(backend="duckdb")})
    with pytest.raises(dg.Failure, match=r"the reporting backend is duckdb, not ducklake"):
        ducklake_maintenance(context, DuckLakeMaintenanceConfig())


@pytest.mark.parametrize(("exc", "retried"), [
    (duckdb.TransactionException("TransactionContext Error: Failed to commit DuckLake transaction"), True),
    (duckdb.Error("Failed to delete flushed inlined data in DuckLake from table t: database is locked"), True),
    (duckdb.InvalidInputException("Invalid Input Error: Attempting to fetch from an unsuccessful query result\n"
                                   "Error: TransactionContext Error: Current transaction is aborted (please ROLLBACK)"),
     True),
    (duckdb.CatalogException("Catalog Error: Table with name x does not exist"), False),
])
def test_a_step_that_lost_a_race_is_retried_other_errors_are_not(exc, retried):
    assert conflict(exc) is retried
