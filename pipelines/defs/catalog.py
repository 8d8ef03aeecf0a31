"""The contract catalog docs asset: the Markdown catalog BI users read, rendered from reporting_schema/."""


import os
from pathlib import Path

import dagster as dg

from pipelines.defs.resources import ReportingResource

CATALOG_KEY = dg.AssetKey(["docs", "contract_catalog"])


def catalog_path(state_dir: Path) -> Path:
    """REPORTING_CATALOG_PATH, or <state>/published/contract_catalog.md."""
    return Path(os.environ.get("REPORTING_CATALOG_PATH") or state_dir / "published" / "contract_catalog.md")


@dg.asset(key=CATALOG_KEY, group_name="contract_docs", kinds={"markdown"}, tags={"layer": "docs"},
          description="Markdown catalog of every reporting contract (tables, grain, keys, owners, columns, freshness); "
                      "what `reporting contract docs` prints. Written to REPORTING_CATALOG_PATH or "
                      "<state>/published/contract_catalog.md, and shown here.")
def contract_catalog(context: dg.AssetExecutionContext, reporting: ReportingResource) -> dg.MaterializeResult:
    from pipelines.contract.docs import render_catalog
    from pipelines.contract.model import load_contracts

    contracts = load_contracts()
    text = render_catalog(contracts)
    out = catalog_path(reporting.settings().state_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    context.log.info(f"wrote {out} ({len(contracts)} contracts)")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(out)), "contracts": len(contracts),
                                          "catalog": dg.MetadataValue.md(text)})
