"""The contract catalog docs asset: the Markdown catalog BI users read, rendered from the estate's contracts."""


from pathlib import Path

import dagster as dg

from pipelines.defs.resources import ReportingResource

CATALOG_KEY = dg.AssetKey(["docs", "contract_catalog"])


def catalog_path(state_dir: Path) -> Path:
    """Where the catalog is published: <state>/published/contract_catalog.md."""
    return state_dir / "published" / "contract_catalog.md"


@dg.asset(key=CATALOG_KEY, group_name="contract_docs", kinds={"markdown"}, tags={"layer": "docs"},
          description="Markdown catalog of every reporting contract (tables, grain, keys, owners, columns, freshness); "
                      "what `reporting contract docs` prints. Written to <state>/published/contract_catalog.md, "
                      "and shown here.")
def contract_catalog(context: dg.AssetExecutionContext, reporting: ReportingResource) -> dg.MaterializeResult:
    from pipelines.contract.docs import render_catalog
    from pipelines.contract.model import load_contracts

    settings = reporting.settings()
    contracts = load_contracts(settings.estate.contracts)
    text = render_catalog(contracts)
    out = catalog_path(settings.state_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    context.log.info(f"wrote {out} ({len(contracts)} contracts)")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(out)), "contracts": len(contracts),
                                          "catalog": dg.MetadataValue.md(text)})
