"""Ingest assets: every live contract table version, grouped by owning service.

One multi-asset drains Kafka until caught up (the same code as `reporting ingest`), because a
single consumer pass feeds all tables; each table is still its own asset with its own checks.
"""


import dagster as dg
from dagster import AssetExecutionContext

from pipelines.contract.model import Contract, load_contracts
from pipelines.defs.resources import ReportingResource

INGEST_POOL = "reporting_db_writer"


def contract_asset_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey(["reporting", contract.physical_name])


def live_contracts() -> list[Contract]:
    return [c for c in load_contracts() if c.status != "retired"]


def contract_spec(contract: Contract) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=contract_asset_key(contract),
        group_name=f"{contract.owner_service}_service",
        description=f"{contract.description.strip()}\n\nGrain: {contract.grain}",
        owners=[f"team:{contract.owner_service}"],
        kinds={"duckdb", "kafka"},
        tags={"contract_status": contract.status, "major": str(contract.major)},
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


def build_ingest_assets(contracts: list[Contract]) -> dg.AssetsDefinition:
    @dg.multi_asset(specs=[contract_spec(c) for c in contracts], name="ingest_contract_tables",
                    can_subset=False, pool=INGEST_POOL,
                    description="Drain the CDC topics into the contract tables (reporting ingest --until-caught-up).")
    def ingest_contract_tables(context: AssetExecutionContext, reporting: ReportingResource):
        from pipelines.apply.runner import run_pipeline

        stats = run_pipeline(settings=reporting.settings(), until_caught_up=True, group=reporting.consumer_group,
                             say=context.log.info, install_signals=False)
        for c in contracts:
            yield dg.MaterializeResult(asset_key=contract_asset_key(c), metadata={
                "events_in_run": stats.events, "rows_applied_in_run": stats.rows,
                "dead_letters_in_run": stats.dead_letters})

    return ingest_contract_tables
