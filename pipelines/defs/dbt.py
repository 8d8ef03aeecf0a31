"""dbt models as Dagster assets (dagster-dbt); dbt sources map onto the contract-table assets."""


import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.defs.resources import POOL, wait_writable
from pipelines.settings import REPO_ROOT, Settings

DBT_DIR = REPO_ROOT / "dbt_project"


def dbt_env(settings: Settings | None = None) -> dict[str, str]:
    """Environment dbt's profiles.yml reads (paths and connection), from the project's settings."""
    s = settings or Settings.load()
    env = {"REPORTING_DUCKDB_PATH": str(s.duckdb_path), "REPORTING_PG_HOST": s.host,
           "REPORTING_PG_PORT": str(s.ports["reporting_pg"]), "REPORTING_PG_USER": "reporting_writer",
           "REPORTING_PG_DBNAME": "reporting", "REPORTING_PG_PASSWORD": os.environ.get("REPORTING_PG_PASSWORD", "")}
    if not env["REPORTING_PG_PASSWORD"]:
        from pipelines.stack import secrets

        env["REPORTING_PG_PASSWORD"] = secrets.load(s).get("REPORTING_PG_PASSWORD", "")
    return env


def dbt_target() -> str:
    return "postgres" if Settings.load().backend == "postgres" else "duckdb"


def ensure_manifest() -> Path:
    """`dbt parse` when target/manifest.json is missing or older than any project file (no DB needed)."""
    manifest = DBT_DIR / "target" / "manifest.json"
    newest = max((p.stat().st_mtime for p in DBT_DIR.rglob("*") if p.is_file()
                  and "target" not in p.parts and "logs" not in p.parts), default=0)
    if not manifest.exists() or manifest.stat().st_mtime < newest:
        dbt = Path(sys.executable).with_name("dbt")
        env = {**os.environ, **{k: v for k, v in dbt_env().items() if k not in os.environ}}
        subprocess.run([str(dbt), "parse", "--quiet", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)],
                       check=True, env=env, cwd=DBT_DIR)
    return manifest


class ReportingDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["reporting", dbt_resource_props.get("identifier") or dbt_resource_props["name"]])
        key = ["dbt", dbt_resource_props["name"]]
        version = dbt_resource_props.get("version")
        if version is not None:
            key[-1] = f"{dbt_resource_props['name']}_v{version}"
        return dg.AssetKey(key)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return f"dbt_{_layer(dbt_resource_props)}"

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        return {**super().get_tags(dbt_resource_props), "layer": _layer(dbt_resource_props)}


def _layer(dbt_resource_props: Mapping[str, Any]) -> str:
    return "marts" if "marts" in dbt_resource_props.get("path", "") else "staging"


def build_dbt_assets() -> dg.AssetsDefinition:
    manifest = ensure_manifest()

    @dbt_assets(manifest=manifest, dagster_dbt_translator=ReportingDbtTranslator(), name="musiccorp_dbt",
                pool=POOL)
    def musiccorp_dbt(context: AssetExecutionContext, dbt: DbtCliResource):
        settings = Settings.load()
        for k, v in dbt_env(settings).items():
            os.environ.setdefault(k, v)
        wait_writable(settings, say=context.log.info)
        yield from dbt.cli(["build", "--target", dbt_target()], context=context).stream()

    return musiccorp_dbt


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=str(DBT_DIR), profiles_dir=str(DBT_DIR),
                          dbt_executable=str(Path(sys.executable).with_name("dbt")))
