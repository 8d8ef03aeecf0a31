"""Ingest assets: every live contract table version, grouped by owning service.

One multi-asset drains Kafka until caught up (the same code as `reporting ingest`), because a
single consumer pass feeds all tables; each table is still its own asset with its own checks.
Each table depends on its owning service's connector asset (when the estate declares that service).
"""

from collections.abc import Iterable

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.config.model import Estate
from pipelines.contract.model import Contract, load_contracts
from pipelines.defs.connectors import connector_asset_key, connector_services
from pipelines.defs.resources import POOL, ReportingResource, wait_writable

INGEST_POOL = POOL


def contract_asset_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey(["reporting", contract.physical_name])


def live_contracts(estate: Estate) -> list[Contract]:
    """The estate's contract table versions that are not retired (estate.contracts)."""
    return [c for c in load_contracts(estate.contracts) if c.status != "retired"]


def contract_spec(contract: Contract, services: Iterable[str] = (), backend: str = "duckdb") -> dg.AssetSpec:
    deps = [connector_asset_key(contract.owner_service)] if contract.owner_service in services else []
    return dg.AssetSpec(
        key=contract_asset_key(contract),
        group_name=f"{contract.owner_service}_service",
        description=f"{contract.description.strip()}\n\nGrain: {contract.grain}",
        owners=[f"team:{contract.owner_service}"],
        kinds={backend, "kafka"},
        deps=deps,
        tags={"contract_status": contract.status, "major": str(contract.major), "layer": "contract"},
        metadata={
            "grain": contract.grain,
            "primary_key": ", ".join(contract.primary_key),
            "delete_semantics": contract.delete_semantics,
            "freshness_objective_s": contract.freshness_seconds,
            "deprecation_date": str(contract.deprecation_date or ""),
            "dagster/column_schema": dg.TableSchema(columns=[
                dg.TableColumn(c.name, c.physical_type, description=c.description,
                               constraints=dg.TableColumnConstraints(nullable=not c.required))
                for c in contract.columns]),
        },
    )


def build_ingest_assets(contracts: list[Contract], estate: Estate) -> dg.AssetsDefinition:
    """One multi-asset over `contracts`; each table depends on its owning service's connector asset."""
    services = frozenset(connector_services(estate))

    @dg.multi_asset(specs=[contract_spec(c, services, estate.reporting.backend) for c in contracts],
                    name="ingest_contract_tables",
                    can_subset=False, pool=POOL,
                    description="Drain the CDC topics into the contract tables (reporting ingest --until-caught-up).")
    def ingest_contract_tables(context: AssetExecutionContext, reporting: ReportingResource):
        from pipelines.apply.runner import run_pipeline

        settings = reporting.settings()
        wait_writable(settings, say=context.log.info)
        stats = run_pipeline(settings=settings, until_caught_up=True, group=reporting.group(settings),
                             say=context.log.info, install_signals=False,
                             planners=reporting.planner_count(settings))
        for c in contracts:
            yield dg.MaterializeResult(asset_key=contract_asset_key(c), metadata={
                "events_in_run": stats.events, "rows_applied_in_run": stats.rows,
                "dead_letters_in_run": stats.dead_letters})

    return ingest_contract_tables
