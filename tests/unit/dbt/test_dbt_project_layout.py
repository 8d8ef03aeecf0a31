"""The dbt project follows its conventions: read as files, no database and no dbt run needed.

Staging is 1:1 with the live contract tables and filters soft deletes; every mart states its grain,
enforces a contract with portable data types and tests its key; profiles take paths from env vars.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipelines.contract.model import load_contracts
from pipelines.dbt_sources import live_contracts

pytestmark = pytest.mark.unit

DBT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"
STAGING = DBT_DIR / "models" / "staging"
MARTS = DBT_DIR / "models" / "marts"
PORTABLE_TYPE = re.compile(r"^(bigint|integer|varchar|boolean|date|timestamptz|numeric\(\d+,\d+\))$")
"""data_type spellings both DuckDB and PostgreSQL accept (checked by the integration tests)."""


def _models(folder: Path) -> dict[str, dict]:
    models = {}
    for path in sorted(folder.glob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            models[model["name"]] = model
    return models


def _tests(entries: list | None) -> set[str]:
    return {t if isinstance(t, str) else next(iter(t)) for t in entries or []}


def test_project_and_materializations():
    project = yaml.safe_load((DBT_DIR / "dbt_project.yml").read_text())
    assert project["name"] == "musiccorp_reporting"
    folders = project["models"]["musiccorp_reporting"]
    assert folders["staging"] == {"+materialized": "view", "+schema": "staging"}
    assert folders["marts"] == {"+materialized": "table", "+schema": "marts"}


def test_profiles_take_every_location_from_the_environment():
    profiles = yaml.safe_load((DBT_DIR / "profiles.yml").read_text())["musiccorp_reporting"]
    assert profiles["target"] == "duckdb"
    duck, pg = profiles["outputs"]["duckdb"], profiles["outputs"]["postgres"]
    assert duck["type"] == "duckdb" and duck["path"] == "{{ env_var('REPORTING_DUCKDB_PATH') }}"
    assert pg["type"] == "postgres"
    for key, var in [("host", "REPORTING_PG_HOST"), ("port", "REPORTING_PG_PORT"), ("user", "REPORTING_PG_USER"),
                     ("password", "REPORTING_PG_PASSWORD"), ("dbname", "REPORTING_PG_DBNAME")]:
        assert f"env_var('{var}'" in str(pg[key]), key
    assert pg["password"] == "{{ env_var('REPORTING_PG_PASSWORD') }}"  # no default for a secret


def test_one_staging_model_per_live_contract_table():
    tables = [c.table for c in live_contracts(load_contracts())]
    sql_models = sorted(p.stem for p in STAGING.glob("stg_*.sql"))
    assert sql_models == sorted(f"stg_{t}" for t in tables)
    assert set(_models(STAGING)) == set(sql_models)


@pytest.mark.parametrize("contract", live_contracts(load_contracts()), ids=lambda c: c.table)
def test_staging_model_shape(contract):
    sql = (STAGING / f"stg_{contract.table}.sql").read_text()
    assert f"{{{{ source('reporting', '{contract.table}') }}}}" in sql
    ctes = re.findall(r"^(\w+) as \(", sql, flags=re.MULTILINE)
    assert ctes == ["source", "renamed", "final"]
    assert sql.rstrip().endswith("select * from final")
    filters_deletes = "where deleted_at is null" in sql
    assert filters_deletes == (contract.delete_semantics == "soft")


def test_every_mart_states_its_grain_enforces_a_portable_contract_and_tests_its_key():
    marts = _models(MARTS)
    assert set(marts) >= {"fct_orders", "fct_order_lines", "dim_customers", "dim_products", "fct_payments",
                          "fct_order_fulfilment", "fct_fulfilment_funnel", "fct_daily_revenue",
                          "fct_stock_levels", "fct_stock_outs", "fct_verification_funnel"}
    for name, model in marts.items():
        assert "Grain:" in model["description"] and model["config"]["meta"]["grain"], name
        assert model["config"]["contract"] == {"enforced": True}, name
        for column in model["columns"]:
            assert PORTABLE_TYPE.match(column["data_type"]), f"{name}.{column['name']}: {column['data_type']}"
        keys = [c for c in model["columns"] if {"unique", "not_null"} <= _tests(c.get("data_tests"))]
        assert keys, f"{name}: no column tested unique + not_null"
        assert any(c.get("constraints") and {"type": "primary_key"} in c["constraints"] for c in model["columns"]), name
        sql_files = [f"{name}.sql"] if "versions" not in model else [f"{name}_v{v['v']}.sql" for v in model["versions"]]
        for sql in sql_files:
            assert (MARTS / sql).is_file(), sql


def test_marts_use_relationships_and_accepted_values():
    marts = _models(MARTS)
    found = set()
    for model in marts.values():
        for column in model["columns"]:
            found |= _tests(column.get("data_tests"))
    assert {"relationships", "accepted_values", "unique", "not_null"} <= found


def test_fct_orders_is_versioned_with_v1_and_v2_live():
    model = _models(MARTS)["fct_orders"]
    assert model["latest_version"] == 2
    assert [v["v"] for v in model["versions"]] == [2, 1]
    v1 = next(v for v in model["versions"] if v["v"] == 1)
    assert str(v1["deprecation_date"]) == "2027-06-30"


def test_unit_tests_cover_the_funnel_and_the_revenue_logic():
    unit_tests = []
    for path in MARTS.glob("*.yml"):
        unit_tests += (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    assert {t["model"] for t in unit_tests} >= {"fct_daily_revenue", "fct_order_fulfilment", "fct_fulfilment_funnel"}


def test_marts_never_select_pii_columns():
    pii = {col.name for c in load_contracts() for col in c.columns if col.classification == "pii"}
    for sql in MARTS.glob("*.sql"):
        code = re.sub(r"--[^\n]*", "", sql.read_text())  # comments may talk about pii, code may not use it
        words = set(re.findall(r"\b\w+\b", code))
        assert not pii & words, f"{sql.name} mentions {sorted(pii & words)}"
