"""The code location loads (lazily, as workspace.yaml points at it) and has every asset, check, job,
sensor and schedule operators rely on."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from pipelines.defs.checks import CONFORMANCE_CHECK, DEAD_LETTER_CHECK, FRESHNESS_CHECK, RECONCILE_CHECK
from pipelines.defs.connectors import CONNECTOR_CHECK, connector_services
from pipelines.defs.ingest import live_contracts
from pipelines.defs.resources import POOL
from pipelines.settings import REPO_ROOT

pytestmark = pytest.mark.integration

JOBS = {"ingest_job", "dbt_build_job", "reconcile_job", "resnapshot_table_job", "replay_dead_letters_job",
        "publish_contract_docs_job"}
SENSORS = {"consumer_lag_sensor", "dead_letter_sensor", "connector_health_sensor", "pool_wait_sensor"}
SCHEDULES = {"dbt_build_schedule", "reconcile_schedule"}


def test_workspace_points_at_lazy_definitions():
    from dagster._core.definitions.reconstruct import load_def_in_module, repository_def_from_target_def

    ws = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"]
    target = load_def_in_module(ws["module_name"], ws["attribute"], str(REPO_ROOT))
    repo = repository_def_from_target_def(target)
    assert dg.AssetKey(["reporting", "orders_v2"]) in repo.asset_graph.get_all_asset_keys()


def test_every_asset_exists_with_its_group(repo):
    graph = repo.asset_graph
    keys = graph.get_all_asset_keys()
    for service in connector_services():
        key = dg.AssetKey(["connectors", service])
        assert key in keys
        assert graph.get(key).group_name == f"{service}_service"
    for c in live_contracts():
        key = dg.AssetKey(["reporting", c.physical_name])
        assert key in keys
        node = graph.get(key)
        assert node.group_name == f"{c.owner_service}_service"
        assert node.pools == {POOL}
        if c.owner_service in connector_services():
            assert dg.AssetKey(["connectors", c.owner_service]) in node.parent_keys
    for model in ("stg_orders", "fct_orders_v1", "fct_orders_v2", "fct_daily_revenue", "dim_customers"):
        assert dg.AssetKey(["dbt", model]) in keys
    assert graph.get(dg.AssetKey(["dbt", "stg_orders"])).group_name == "dbt_staging"
    assert graph.get(dg.AssetKey(["dbt", "fct_orders_v2"])).group_name == "dbt_marts"
    assert dg.AssetKey(["reporting", "orders_v2"]) in graph.get(dg.AssetKey(["dbt", "stg_orders"])).parent_keys
    assert dg.AssetKey(["docs", "contract_catalog"]) in keys


def test_every_check_exists(repo):
    checks = {(k.asset_key.to_user_string(), k.name) for k in repo.asset_graph.asset_check_keys}
    for c in live_contracts():
        for name in (CONFORMANCE_CHECK, FRESHNESS_CHECK, DEAD_LETTER_CHECK):
            assert (f"reporting/{c.physical_name}", name) in checks
    for fed in ("orders_v1", "orders_v2", "order_lines_v1"):
        assert (f"reporting/{fed}", RECONCILE_CHECK) in checks
    for service in connector_services():
        assert (f"connectors/{service}", CONNECTOR_CHECK) in checks
    dbt_tests = [name for asset, name in checks if asset.startswith("dbt/")]
    assert any(name.startswith("unique_fct_orders_v2") for name in dbt_tests), "dbt tests become asset checks"


def test_jobs_sensors_schedules(repo):
    assert JOBS <= {j.name for j in repo.get_all_jobs()}
    assert SENSORS == {s.name for s in repo.sensor_defs}
    assert SCHEDULES == {s.name for s in repo.schedule_defs}


def test_ingest_job_runs_routine_checks_not_reconciliation(definitions):
    ops = {n.name for n in definitions.resolve_job_def("ingest_job").graph.node_defs}
    assert ops == {"ingest_contract_tables", "contract_conformance", "freshness_objective", "no_dead_letters"}
    assert {n.name for n in definitions.resolve_job_def("reconcile_job").graph.node_defs} == {"matches_source"}
    assert {n.name for n in definitions.resolve_job_def("dbt_build_job").graph.node_defs} == {"musiccorp_dbt"}


def test_reporting_ops_share_the_writer_pool(definitions):
    for job_name in ("ingest_job", "dbt_build_job", "replay_dead_letters_job", "reconcile_job"):
        job = definitions.resolve_job_def(job_name)
        pools = {node.definition.pool for node in job.graph.nodes}
        assert POOL in pools, job_name
