"""Dagster code location (workspace.yaml → python_package pipelines, attribute `defs`): wiring only."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.dbt import build_dbt_assets, dbt_resource
from pipelines.defs.ingest import build_ingest_assets, live_contracts
from pipelines.defs.resources import ReportingResource

defs = dg.Definitions(
    assets=[build_ingest_assets(live_contracts()), build_dbt_assets()],
    resources={"reporting": ReportingResource(), "dbt": dbt_resource()},
)
