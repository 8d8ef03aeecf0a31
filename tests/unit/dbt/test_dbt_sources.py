"""dbt sources generated from the contracts: the committed file is the rendering, and drift is named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from pipelines import dbt_sources
from pipelines.contract.model import Contract, load_contracts
from pipelines.dbt_sources import check_sources, default_path, live_contracts, main, render_sources

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def contracts() -> list[Contract]:
    return load_contracts()


def _replace(contracts: list[Contract], physical_name: str, **changes) -> list[Contract]:
    return [dataclasses.replace(c, **changes) if c.physical_name == physical_name else c for c in contracts]


def _drop_column(contracts: list[Contract], physical_name: str, column: str) -> list[Contract]:
    c = next(c for c in contracts if c.physical_name == physical_name)
    return _replace(contracts, physical_name, columns=tuple(col for col in c.columns if col.name != column))


def test_committed_sources_file_is_the_rendering_of_the_contracts(contracts):
    path = default_path()
    assert path == Path(__file__).resolve().parents[3] / "dbt_project" / "models" / "staging" / "__sources.yml"
    assert path.read_text(encoding="utf-8") == render_sources(contracts), (
        "dbt sources drifted from reporting_schema/: run `python -m pipelines.dbt_sources`")
    assert check_sources(path, contracts) == []


def test_sources_are_the_latest_live_major_of_each_table(contracts):
    doc = yaml.safe_load(render_sources(contracts))
    (source,) = doc["sources"]
    assert source["name"] == "reporting" and source["schema"] == "reporting"
    identifiers = {t["name"]: t["identifier"] for t in source["tables"]}
    latest: dict[str, int] = {}
    for c in contracts:
        if c.status in ("active", "deprecated"):
            latest[c.table] = max(latest.get(c.table, 0), c.major)
    assert identifiers == {name: f"{name}_v{major}" for name, major in latest.items()}
    # a table published in two live majors is read from the newer one
    assert any(sum(1 for c in contracts if c.table == n and c.status in ("active", "deprecated")) > 1 for n in latest)


def test_live_contracts_skip_retired_and_not_yet_populated_majors(contracts):
    orders_v2 = next(c for c in contracts if c.physical_name == "orders_v2")
    draft_v3 = dataclasses.replace(orders_v2, major=3, version="3.0.0", status="draft")
    assert [c.physical_name for c in live_contracts([*contracts, draft_v3]) if c.table == "orders"] == ["orders_v2"]
    retired = _replace(contracts, "orders_v2", status="retired")
    assert [c.physical_name for c in live_contracts(retired) if c.table == "orders"] == ["orders_v1"]


def test_freshness_uses_ingested_at_and_the_contract_objective(contracts):
    slow = _replace(contracts, "payments_v1", freshness_seconds=7200)
    tables = {t["name"]: t for t in yaml.safe_load(render_sources(slow))["sources"][0]["tables"]}
    orders = tables["orders"]["config"]
    assert orders["loaded_at_field"] == "_ingested_at"
    assert orders["freshness"] == {"warn_after": {"count": 5, "period": "minute"},
                                   "error_after": {"count": 10, "period": "minute"}}
    assert tables["payments"]["config"]["freshness"]["warn_after"] == {"count": 2, "period": "hour"}


@pytest.mark.parametrize(("seconds", "expected"), [
    (300, {"count": 5, "period": "minute"}),
    (90, {"count": 2, "period": "minute"}),  # never shorter than the objective
    (3600, {"count": 1, "period": "hour"}),
    (172800, {"count": 2, "period": "day"}),
])
def test_freshness_period(seconds, expected):
    assert dbt_sources._period(seconds) == expected


def test_columns_carry_types_classification_and_contract_tests(contracts):
    tables = {t["name"]: t for t in yaml.safe_load(render_sources(contracts))["sources"][0]["tables"]}
    columns = {c["name"]: c for c in tables["orders"]["columns"]}
    assert columns["order_status"]["data_type"] == "varchar(16)"
    assert columns["order_status"]["data_tests"][:1] == ["not_null"]
    assert columns["order_status"]["data_tests"][1]["accepted_values"]["arguments"]["values"][-1] == "REFUNDED"
    assert columns["order_id"]["data_tests"] == ["not_null", "unique"]
    assert "data_tests" not in columns["sales_channel"]
    assert {"_source_position", "_source_ts", "_ingested_at", "_op", "_deleted_at"} <= set(columns)
    customers = {c["name"]: c for c in tables["customers"]["columns"]}
    assert customers["email"]["config"]["meta"]["classification"] == "pii"
    stock = tables["stock_levels"]
    assert "_deleted_at" not in {c["name"] for c in stock["columns"]}  # hard deletes
    assert stock["data_tests"] == [{"unique_combination_of_columns": {
        "arguments": {"combination_of_columns": ["sku", "location"]}}}]


def test_rendering_is_deterministic(contracts):
    assert render_sources(contracts) == render_sources(list(reversed(contracts)))


def test_check_names_the_column_that_drifted(tmp_path, contracts):
    path = tmp_path / "__sources.yml"
    path.write_text(render_sources(_drop_column(contracts, "orders_v2", "sales_channel")))
    problems = check_sources(path, contracts)
    assert any("orders.sales_channel" in p and "missing" in p for p in problems), problems

    path.write_text(render_sources(contracts))
    assert check_sources(path, _drop_column(contracts, "payments_v1", "captured_at")) == [
        "__sources.yml: payments.captured_at: column not in contract payments_v1"]


def test_check_names_a_type_change_and_a_new_major(tmp_path, contracts):
    path = tmp_path / "__sources.yml"
    path.write_text(render_sources(contracts))
    orders_v2 = next(c for c in contracts if c.physical_name == "orders_v2")
    wider = tuple(dataclasses.replace(col, physical_type="varchar(64)") if col.name == "sales_channel" else col
                  for col in orders_v2.columns)
    problems = check_sources(path, _replace(contracts, "orders_v2", columns=wider))
    assert problems == ["__sources.yml: orders.sales_channel: data_type is 'varchar(32)', contract orders_v2 "
                        "says 'varchar(64)'"]
    v3 = dataclasses.replace(orders_v2, major=3, version="3.0.0")
    problems = check_sources(path, [*contracts, v3])
    assert any("orders: identifier is 'orders_v2', the live contract table is 'orders_v3'" in p for p in problems)


def test_check_names_missing_and_extra_tables(tmp_path, contracts):
    path = tmp_path / "__sources.yml"
    path.write_text(render_sources([c for c in contracts if c.table != "shipments"]))
    assert check_sources(path, contracts) == [
        "__sources.yml: shipments: live contract table shipments_v1 missing from the sources file"]
    path.write_text(render_sources(contracts))
    assert check_sources(path, [c for c in contracts if c.table != "shipments"]) == [
        "__sources.yml: shipments: source table 'shipments_v1' is not a live contract table"]


def test_check_reports_hand_edits_and_missing_file(tmp_path, contracts):
    path = tmp_path / "__sources.yml"
    path.write_text(render_sources(contracts) + "# a hand edit\n")
    (problem,) = check_sources(path, contracts)
    assert "text differs from the rendering" in problem
    assert "sources file missing" in check_sources(tmp_path / "nope.yml", contracts)[0]


def test_main_writes_then_checks(tmp_path, capsys):
    path = tmp_path / "models" / "__sources.yml"
    assert main(["--path", str(path), "--check"]) == 1
    assert "sources file missing" in capsys.readouterr().err
    assert main(["--path", str(path)]) == 0
    assert main(["--path", str(path), "--check"]) == 0
    path.write_text(path.read_text().replace("identifier: orders_v2", "identifier: orders_v1"))
    assert main(["--path", str(path), "--check"]) == 1
    assert "orders: identifier is 'orders_v1'" in capsys.readouterr().err
