"""Dagster code location (workspace.yaml → module pipelines.definitions, attribute `defs`): wiring only.

`defs` is loaded lazily (`@dg.definitions`): importing this module reads nothing. When the code server
loads the location, `build_definitions()` is the edge: it reads the estate file once (`Settings.load()`:
REPORTING_ESTATE, else the bundled reporting.yaml, with the documented REPORTING_* overrides) and builds
every definition from it (services and their connectors, contracts, projections, the dbt project and
its manifest, the schedules). Runs and sensor ticks read the estate again through ReportingResource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from pipelines.settings import Settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Every asset, check, job, sensor and schedule of the estate of `settings` (default: `Settings.load()`)."""
    from pipelines.defs.catalog import contract_catalog
    from pipelines.defs.checks import build_contract_checks, reconcilable_tables
    from pipelines.defs.connectors import build_connector_defs
    from pipelines.defs.dbt import build_dbt_assets, dbt_resource
    from pipelines.defs.ingest import build_ingest_assets, live_contracts
    from pipelines.defs.jobs import asset_jobs, ducklake_maintenance_job, replay_job, resnapshot_table_job
    from pipelines.defs.resources import ReportingResource
    from pipelines.defs.schedules import build_schedules
    from pipelines.defs.sensors import (
        connector_health_sensor,
        consumer_lag_sensor,
        dead_letter_sensor,
        pool_wait_sensor,
    )
    from pipelines.settings import Settings

    settings = settings or Settings.load()
    estate = settings.estate
    contracts = live_contracts(estate)
    connectors, connector_checks = build_connector_defs(estate)
    ingest = build_ingest_assets(contracts, estate)
    dbt = build_dbt_assets(settings)
    conformance, freshness, dead_letters, *reconcile = build_contract_checks(contracts, reconcilable_tables(estate))
    reconcile_checks = reconcile[0] if reconcile else None
    jobs = asset_jobs(ingest, dbt, contract_catalog, [conformance, freshness, dead_letters], reconcile_checks)
    jobs += [resnapshot_table_job, replay_job(settings.backend)]
    lake = settings.ducklake if settings.backend == "ducklake" else None  # DuckLake: its maintenance too
    if lake is not None:
        jobs.append(ducklake_maintenance_job)
    return dg.Definitions(
        assets=[a for a in (connectors, ingest, dbt, contract_catalog) if a is not None],
        asset_checks=[c for c in (connector_checks, conformance, freshness, dead_letters, reconcile_checks)
                      if c is not None],
        jobs=jobs,
        sensors=[consumer_lag_sensor, dead_letter_sensor, connector_health_sensor, pool_wait_sensor],
        schedules=build_schedules(estate.dagster.schedules, with_reconcile=reconcile_checks is not None,
                                  ducklake_maintenance=lake.maintenance if lake is not None else None),
        resources={"reporting": ReportingResource(estate=str(estate.path)), "dbt": dbt_resource(settings)},
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
