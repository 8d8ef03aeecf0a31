"""dbt models as Dagster assets (dagster-dbt); dbt sources map onto the contract-table assets.

The dbt project is the estate's `dbt_project`. Its profiles.yml reads where the reporting database is
from environment variables (REPORTING_DUCKDB_PATH, REPORTING_PG_HOST/PORT/DBNAME/USER/PASSWORD,
REPORTING_DUCKLAKE_*); `dbt_env(settings)` computes them from the estate. On the ducklake backend dbt is
the DuckLake venv's (`dbt_executable(settings)`: dbt-duckdb on DuckDB 1.5.5, which has the extension).
Nothing is exported into this process at load:

- at load, dagster-dbt needs only the manifest; when it is missing or stale, `dbt parse` runs with
  `dbt_env(settings)` as part of its own environment;
- at run time, dagster-dbt's `DbtCliResource.cli` (0.29) has no environment argument: it starts dbt
  with a copy of `os.environ` (and loads profiles.yml in-process from it to get an adapter). So
  `dbt_invocation` sets the variables only for the duration of that call, which starts the dbt
  process, and restores the run process's environment right after; the run's steps execute one at a
  time (in-process executor), so nothing else reads them meanwhile.
"""


import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.defs.resources import POOL, ReportingResource, wait_writable
from pipelines.procenv import environ_overlay
from pipelines.settings import Settings


def dbt_project_dir(settings: Settings) -> Path:
    """The estate's dbt project (its profiles.yml sits next to dbt_project.yml)."""
    return settings.estate.dbt_project


def dbt_env(settings: Settings) -> dict[str, str]:
    """The variables dbt's profiles.yml reads, from the estate: the DuckDB file, and the PostgreSQL
    reporting database as its writer role when the estate declares one (the password is resolved only
    when PostgreSQL is the backend, i.e. the target dbt builds). On the ducklake backend also the lake
    (`ducklake_dbt_env`; installs the DuckLake venv on first use)."""
    env = {"REPORTING_DUCKDB_PATH": str(settings.duckdb_path)}
    pg = settings.estate.reporting.postgres
    if pg is not None:
        env.update({"REPORTING_PG_HOST": pg.host, "REPORTING_PG_PORT": str(pg.port),
                    "REPORTING_PG_DBNAME": pg.database, "REPORTING_PG_USER": pg.writer.user})
        if settings.backend == "postgres":
            env["REPORTING_PG_PASSWORD"] = settings.secret(pg.writer.password, "reporting.postgres.writer.password")
    if settings.backend == "ducklake":
        env.update(ducklake_dbt_env(settings))
    return env


def ducklake_dbt_env(settings: Settings) -> dict[str, str]:
    """The `ducklake` output's variables: the lake as the pipeline attaches it (pipelines/apply/runner.py
    `ducklake_target`), the extension files of the DuckLake venv's wheels and the folder DuckDB installs them
    into (inside that venv). A PostgreSQL catalog's password goes to PGPASSWORD (libpq reads it), never into
    the catalog string, which dbt prints with its connection settings."""
    from pipelines.apply.runner import ducklake_target
    from pipelines.ducklake.venv import venv_dir

    target = ducklake_target(settings)
    env = {"REPORTING_DUCKLAKE_CATALOG": target.uri(), "REPORTING_DUCKLAKE_DATA_PATH": f"{target.data_path}/",
           "REPORTING_DUCKLAKE_EXTENSIONS": json.dumps(list(target.extensions)),
           "REPORTING_DUCKLAKE_EXTENSION_DIR": str(venv_dir(settings) / "duckdb-extensions"),
           "REPORTING_DUCKLAKE_INLINING": "None" if target.inlining_rows is None else str(int(target.inlining_rows))}
    if target.postgres_password:
        env["PGPASSWORD"] = target.postgres_password
    return env


def dbt_target(settings: Settings) -> str:
    """The profiles.yml output of the estate's reporting backend."""
    return settings.backend if settings.backend in ("postgres", "ducklake") else "duckdb"


def dbt_executable(settings: Settings) -> str:
    """The dbt that builds the estate's backend: the product venv's, or on the ducklake backend the DuckLake
    venv's (DuckDB 1.5.5, the only DuckDB with the ducklake extension; installed here on first use)."""
    if settings.backend == "ducklake":
        from pipelines.ducklake.venv import ensure_venv

        return str(ensure_venv(settings) / "bin" / "dbt")
    return str(Path(sys.executable).with_name("dbt"))


def manifest_path(settings: Settings) -> Path:
    """Where the definitions' manifest lives: the estate's state folder, not the project's target/
    (every dbt command writes target/, so a reader there can see a half-written file)."""
    return settings.state_dir / "dbt" / "manifest.json"


def ensure_manifest(settings: Settings) -> Path:
    """`dbt parse` when the manifest is missing or older than any project file (no DB needed).

    The webserver, the daemon and each run load the definitions, often at the same moment on a fresh
    clone; so the parse runs under a lock, into a private target folder, and the finished manifest
    replaces the old one in one rename: a reader sees the old file or the new one, never a mix."""
    project = dbt_project_dir(settings)
    manifest = manifest_path(settings)

    def fresh() -> bool:
        newest = max((p.stat().st_mtime for p in project.rglob("*") if p.is_file()
                      and not {"target", "logs", "dbt_packages"} & set(p.relative_to(project).parts)), default=0)
        return manifest.exists() and manifest.stat().st_mtime >= newest

    if fresh():
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest.parent / "manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if fresh():  # another process parsed it while this one waited
            return manifest
        with tempfile.TemporaryDirectory(prefix="parse-", dir=manifest.parent) as tmp:
            env = {**os.environ, **dbt_env(settings)}
            subprocess.run([dbt_executable(settings), "parse", "--quiet", "--project-dir", str(project), "--profiles-dir",
                            str(project), "--target-path", tmp, "--log-path", tmp], check=True, env=env, cwd=project)
            os.replace(Path(tmp) / "manifest.json", manifest)
    return manifest


def dbt_invocation(dbt: DbtCliResource, settings: Settings, args: Sequence[str], context: AssetExecutionContext,
                   **cli: Any):
    """Start `dbt <args>` through dagster-dbt with the estate's profile variables (see the module docstring);
    `cli`: more DbtCliResource.cli arguments."""
    with environ_overlay(dbt_env(settings)):
        return dbt.cli(list(args), context=context, **cli)


def lake_build(dbt: DbtCliResource, settings: Settings, args: Sequence[str], context: AssetExecutionContext):
    """`dbt build` on the ducklake backend. What failed only because its commit collided with another writer of
    the lake (the stream) runs again, LAKE_RETRIES rounds, as `reporting dbt` does: the failed nodes with
    `dbt retry`, or the whole build when dbt stopped before any node ran. dbt retry takes no selection, so
    dagster-dbt starts it without the context, and its materializations and check evaluations are handed on
    here as this step's outputs and check results (each once)."""
    from pipelines.dbt_cli import LAKE_CONFLICT, LAKE_RETRIES, lake_conflicts

    outputs: set[str] = set()
    checks: set[dg.AssetCheckKey] = set()

    def once(event):
        if isinstance(event, dg.AssetMaterialization):  # from `dbt retry`: an output of this step
            if event.asset_key not in context.selected_asset_keys:
                return
            event = dg.Output(None, output_name=event.asset_key.to_python_identifier(), metadata=event.metadata)
        elif isinstance(event, dg.AssetCheckEvaluation):
            if event.asset_check_key not in context.selected_asset_check_keys:
                return
            event = dg.AssetCheckResult(asset_key=event.asset_key, check_name=event.check_name, passed=event.passed,
                                        severity=event.severity, metadata=event.metadata)
        if isinstance(event, dg.Output):
            if event.output_name in outputs:
                return
            outputs.add(event.output_name)
        elif isinstance(event, dg.AssetCheckResult):
            key = dg.AssetCheckKey(event.asset_key, event.check_name)
            if key in checks:
                return
            checks.add(key)
        yield event

    def build():
        return dbt_invocation(dbt, settings, args, context, raise_on_error=False)

    def retry(previous):
        with environ_overlay(dbt_env(settings)):
            return dbt.cli(["retry"], manifest=previous.manifest, dagster_dbt_translator=ReportingDbtTranslator(),
                           target_path=previous.target_path, raise_on_error=False)

    invocation, again = build(), build
    for attempt in range(1, LAKE_RETRIES + 2):
        for event in invocation.stream():
            yield from once(event)
        if invocation.is_successful() or attempt > LAKE_RETRIES:
            break
        try:
            lost = lake_conflicts(invocation.get_artifact("run_results.json"))
        except Exception:  # noqa: BLE001 - no run results: dbt stopped before running a node
            lost = []
        if lost:
            context.log.warning(f"dbt: {len(lost)} node(s) collided with another DuckLake writer's commit "
                                f"({', '.join(u.split('.', 2)[-1] for u in lost)}); dbt retry ({attempt}/{LAKE_RETRIES})")
            again = retry
        elif LAKE_CONFLICT.search(str(invocation.get_error() or "")):
            context.log.warning(f"dbt: a commit collided with another DuckLake writer's before any node ran; "
                                f"running it again ({attempt}/{LAKE_RETRIES})")
        else:
            break
        time.sleep(min(0.5 * 2 ** attempt, 8.0))
        invocation = again(invocation) if again is retry else build()
    if not invocation.is_successful():
        raise dg.Failure(f"dbt build on the DuckLake failed: {invocation.get_error()}")


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


def build_dbt_assets(settings: Settings) -> dg.AssetsDefinition:
    """The dbt models of the estate's dbt project (manifest parsed at load when stale)."""
    manifest = ensure_manifest(settings)

    @dbt_assets(manifest=manifest, dagster_dbt_translator=ReportingDbtTranslator(), name="dbt_models", pool=POOL)
    def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, reporting: ReportingResource):
        run_settings = reporting.settings()
        wait_writable(run_settings, say=context.log.info)
        args = ["build", "--target", dbt_target(run_settings)]
        if run_settings.backend == "ducklake":
            yield from lake_build(dbt, run_settings, args, context)
        else:
            yield from dbt_invocation(dbt, run_settings, args, context).stream()

    return dbt_models


def dbt_resource(settings: Settings) -> DbtCliResource:
    """dagster-dbt's CLI resource on the estate's dbt project (profiles.yml in the project folder)."""
    project = str(dbt_project_dir(settings))
    return DbtCliResource(project_dir=project, profiles_dir=project, dbt_executable=dbt_executable(settings))
