"""The code location loads (lazily, as workspace.yaml points at it) and has every asset, check, job,
sensor and schedule operators rely on: one per service, contract table and dbt model of the estate."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import yaml

from pipelines.defs.checks import CONFORMANCE_CHECK, DEAD_LETTER_CHECK, FRESHNESS_CHECK, RECONCILE_CHECK
from pipelines.defs.connectors import CONNECTOR_CHECK
from pipelines.defs.dbt import dbt_env, dbt_resource
from pipelines.defs.ingest import live_contracts
from pipelines.defs.resources import POOL
from pipelines.projection import load_estate_projections
from pipelines.settings import Settings
from pipelines.ui import CODE_ROOT
from tests.support.estate import write_estate

pytestmark = pytest.mark.integration

JOBS = {"ingest_job", "dbt_build_job", "reconcile_job", "resnapshot_table_job", "replay_dead_letters_job",
        "publish_contract_docs_job"}
SENSORS = {"consumer_lag_sensor", "dead_letter_sensor", "connector_health_sensor", "pool_wait_sensor"}
SCHEDULES = {"dbt_build_schedule", "reconcile_schedule"}


def fed_tables(estate) -> set[str]:
    """Contract tables a projection of the estate feeds (read from the projection files)."""
    return {t.physical_name for tp in load_estate_projections(estate).values() for t in tp.targets}


def dbt_manifest(settings: Settings) -> dict:
    from pipelines.defs.dbt import manifest_path

    return json.loads(manifest_path(settings).read_text())


def dbt_key(node: dict) -> dg.AssetKey:
    version = node.get("version")
    return dg.AssetKey(["dbt", node["name"] if version is None else f"{node['name']}_v{version}"])


def test_workspace_points_at_lazy_definitions(code_settings):
    from dagster._core.definitions.reconstruct import load_def_in_module, repository_def_from_target_def

    ws = yaml.safe_load((CODE_ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"]
    target = load_def_in_module(ws["module_name"], ws["attribute"], str(CODE_ROOT))
    repo = repository_def_from_target_def(target)
    keys = repo.asset_graph.get_all_asset_keys()
    assert {dg.AssetKey(["reporting", c.physical_name]) for c in live_contracts(code_settings.estate)} <= keys


def test_every_asset_exists_with_its_group(repo, code_settings):
    estate = code_settings.estate
    graph = repo.asset_graph
    keys = graph.get_all_asset_keys()
    connector_keys = {k for k in keys if k.path[0] == "connectors"}
    assert connector_keys == {dg.AssetKey(["connectors", s]) for s in estate.service_names}
    for service in estate.service_names:
        assert graph.get(dg.AssetKey(["connectors", service])).group_name == f"{service}_service"
    contracts = live_contracts(estate)
    assert {k for k in keys if k.path[0] == "reporting"} == {dg.AssetKey(["reporting", c.physical_name])
                                                             for c in contracts}
    for c in contracts:
        node = graph.get(dg.AssetKey(["reporting", c.physical_name]))
        assert node.group_name == f"{c.owner_service}_service"
        assert node.pools == {POOL}
        if c.owner_service in estate.service_names:
            assert dg.AssetKey(["connectors", c.owner_service]) in node.parent_keys
    manifest = dbt_manifest(code_settings)
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert models
    assert {k for k in keys if k.path[0] == "dbt"} == {dbt_key(n) for n in models}
    for n in models:
        node = graph.get(dbt_key(n))
        assert node.group_name == ("dbt_marts" if "marts" in n["path"] else "dbt_staging")
        for dep in n["depends_on"]["nodes"]:  # dbt sources are the contract-table assets
            if dep.startswith("source."):
                source = manifest["sources"][dep]
                assert dg.AssetKey(["reporting", source.get("identifier") or source["name"]]) in node.parent_keys
    assert dg.AssetKey(["docs", "contract_catalog"]) in keys


def test_every_check_exists(repo, code_settings):
    estate = code_settings.estate
    checks = {(k.asset_key.to_user_string(), k.name) for k in repo.asset_graph.asset_check_keys}
    for c in live_contracts(estate):
        for name in (CONFORMANCE_CHECK, FRESHNESS_CHECK, DEAD_LETTER_CHECK):
            assert (f"reporting/{c.physical_name}", name) in checks
    fed = fed_tables(estate)
    assert fed
    assert {a for a, name in checks if name == RECONCILE_CHECK} == {f"reporting/{t}" for t in fed}
    for service in estate.service_names:
        assert (f"connectors/{service}", CONNECTOR_CHECK) in checks
    manifest = dbt_manifest(code_settings)
    by_id = {uid: dbt_key(n).to_user_string() for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    dbt_tests = [(by_id[n["attached_node"]], n["name"]) for n in manifest["nodes"].values()
                 if n["resource_type"] == "test" and n.get("attached_node") in by_id]
    assert dbt_tests, "the dbt project has tests"
    assert set(dbt_tests) <= checks, "dbt tests become asset checks of their model"


def test_jobs_sensors_schedules(repo):
    assert JOBS <= {j.name for j in repo.get_all_jobs()}
    assert SENSORS == {s.name for s in repo.sensor_defs}
    assert SCHEDULES == {s.name for s in repo.schedule_defs}


def test_schedules_and_resources_come_from_the_estate(estate_file):
    path = estate_file(**{"dagster.schedules": {"timezone": "Europe/Berlin", "dbt_build": "*/20 * * * *",
                                                "reconcile": None}})
    settings = Settings.load()
    from pipelines.definitions import build_definitions

    definitions = build_definitions(settings)
    repo = definitions.get_repository_def()
    schedules = {s.name: s for s in repo.schedule_defs}
    assert set(schedules) == {"dbt_build_schedule"}  # reconcile: null turns the daily reconciliation off
    assert schedules["dbt_build_schedule"].cron_schedule == "*/20 * * * *"
    assert schedules["dbt_build_schedule"].execution_timezone == "Europe/Berlin"
    resources = definitions.resources
    assert resources["reporting"].estate == str(path)
    assert resources["dbt"].project_dir == str(settings.estate.dbt_project)


def test_ingest_job_runs_routine_checks_not_reconciliation(definitions):
    ops = {n.name for n in definitions.resolve_job_def("ingest_job").graph.node_defs}
    assert ops == {"ingest_contract_tables", "contract_conformance", "freshness_objective", "no_dead_letters"}
    assert {n.name for n in definitions.resolve_job_def("reconcile_job").graph.node_defs} == {"matches_source"}
    assert {n.name for n in definitions.resolve_job_def("dbt_build_job").graph.node_defs} == {"dbt_models"}


def test_reporting_ops_share_the_writer_pool(definitions):
    for job_name in ("ingest_job", "dbt_build_job", "replay_dead_letters_job", "reconcile_job"):
        job = definitions.resolve_job_def(job_name)
        pools = {node.definition.pool for node in job.graph.nodes}
        assert POOL in pools, job_name


# --------------------------------------------------------------------------- dbt's environment
def test_dbt_env_is_built_from_the_estate(tmp_path):
    path = write_estate(tmp_path, **{"reporting.backend": "postgres", "reporting.postgres.host": "db.example",
                                     "reporting.postgres.port": 6543})
    pg_settings = Settings.load(path, environ={"REPORTING_PG_PASSWORD": "s3cret"})
    pg = pg_settings.estate.reporting.postgres
    env = dbt_env(pg_settings)
    assert env["REPORTING_PG_HOST"] == "db.example" and env["REPORTING_PG_PORT"] == "6543"
    assert env["REPORTING_PG_DBNAME"] == pg.database and env["REPORTING_PG_USER"] == pg.writer.user
    assert env["REPORTING_PG_PASSWORD"] == "s3cret"  # the writer's password reference, resolved
    assert env["REPORTING_DUCKDB_PATH"] == str(pg_settings.duckdb_path)

    duck = Settings.load(path, environ={"REPORTING_BACKEND": "duckdb"})
    assert "REPORTING_PG_PASSWORD" not in dbt_env(duck)  # not needed (nor resolved) for the DuckDB target
    assert dbt_env(duck)["REPORTING_DUCKDB_PATH"] == str(duck.duckdb_path)
    assert dbt_resource(duck).project_dir == str(duck.estate.dbt_project)


def test_concurrent_loads_parse_one_whole_manifest(code_settings, tmp_path):
    """Webserver, daemon and runs load the definitions at once on a fresh clone: each must read a whole
    manifest (in the state folder, swapped in by rename), never one that another dbt is still writing."""
    import dataclasses
    from concurrent.futures import ThreadPoolExecutor

    from pipelines.defs.dbt import ensure_manifest, manifest_path

    estate = code_settings.estate.model_copy(update={"state_dir": tmp_path / "state"})
    settings = dataclasses.replace(code_settings, estate=estate)
    assert not manifest_path(settings).exists()
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _i: ensure_manifest(settings), range(4)))
    assert set(paths) == {manifest_path(settings)}
    manifest = json.loads(manifest_path(settings).read_text())
    assert any(k.startswith("model.") for k in manifest["nodes"])
    assert not [p.name for p in manifest_path(settings).parent.iterdir() if p.name.startswith("parse-")]
