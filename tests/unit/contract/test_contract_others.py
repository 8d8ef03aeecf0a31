"""Contracts as the standard allows (`load_any`, used by `reporting contract diff`) next to our strict profile
(the repo's reporting_schema/, used by check and publish), the `servers` entry, and diff across majors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from contract_testkit import REPO_SCHEMA
from typer.testing import CliRunner

from pipelines.contract.cli import app
from pipelines.contract.compat import diff
from pipelines.contract.lock import check
from pipelines.contract.model import (
    Column,
    Contract,
    ContractError,
    _loose_type,
    load_any,
    load_contract,
    load_contracts,
    load_contracts_file,
)

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
OTHERS = (GOLDEN / "41_others_char_types" / "old.yaml").read_text()
"""A contract written by others: ODCS v3.0.2, two tables, physicalName fact_orders, char(n), unknown customProperties."""
ORDERS_V1 = (REPO_SCHEMA / "orders" / "v1.yaml").read_text()
runner = CliRunner()


def _write(tmp_path: Path, text: str, name: str = "contract.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_contract_written_by_others_is_read_as_the_standard_allows(tmp_path: Path) -> None:
    lines, orders = load_any(_write(tmp_path, OTHERS))
    assert (orders.table, orders.major, orders.version, orders.physical_name) == ("orders", 1, "1.2.0", "fact_orders")
    assert (lines.table, lines.physical_name, lines.primary_key) == ("order_lines", "fact_order_lines",
                                                                     ("order_id", "line_no"))
    assert not orders.strict and orders.owner_service is None and orders.freshness_seconds is None
    assert orders.grain == "" and orders.delete_semantics is None and orders.status == "active"
    assert [(c.name, c.physical_type, c.base_type, c.length) for c in orders.columns[1:4]] == [
        ("country_code", "char(2)", "char", 2), ("currency", "char(3)", "char", 3), ("status_code", "char(1)", "char", 1)]
    assert orders.column("status_code").enum == ("O", "C")
    assert orders.column("amount").classification is None
    # unknown customProperties are kept (contract's and table's on the table, a column's on the column), not compared
    assert dict(orders.custom_properties) == {"dataSteward": "jane.doe@example.com", "refreshCron": "0 2 * * *",
                                              "retentionDays": 3650}
    assert orders.column("country_code").custom_properties == (("piiLevel", "none"),)


@pytest.mark.parametrize(("feature", "old", "new", "fragment"), [
    ("several_schema_objects", None, None, "a contract describes exactly one table (schema has 2 objects)"),
    ("char_type", "physicalType: varchar(16)", "physicalType: char(16)", "unknown physicalType 'char(16)'"),
    ("unknown_custom_property", "  - property: ownerService\n", "  - property: dataSteward\n    value: jane\n"
                                                              "  - property: ownerService\n",
     "unknown customProperties entry 'dataSteward'"),
    ("physical_name", "physicalName: orders_v1", "physicalName: fact_orders", "physicalName must be orders_v1"),
])
def test_our_profile_stays_strict_and_diff_accepts_each_feature(tmp_path: Path, feature: str, old: str | None,
                                                                new: str | None, fragment: str) -> None:
    text = OTHERS if old is None else ORDERS_V1.replace(old, new, 1)
    assert old is None or text != ORDERS_V1
    path = _write(tmp_path, text, name="orders/v1.yaml")
    with pytest.raises(ContractError, match="^[^\n]*$") as info:
        load_contract(path)
    assert fragment in str(info.value)
    with pytest.raises(ContractError, match=fragment.split(" (")[0].replace("(", r"\(").replace(")", r"\)")):
        load_contracts(tmp_path)  # the layout of reporting_schema/: check and publish
    assert load_any(path)  # reporting contract diff
    result = runner.invoke(app, ["diff", str(path), str(path)])
    assert result.exit_code == 0, result.output
    assert "0 change(s), 0 breaking" in result.stdout


@pytest.mark.parametrize(("old", "new", "fragment"), [
    ("        required: true\n", "        requird: true\n", "unknown key 'requird' (not in the ODCS v3 schema)"),
    ("apiVersion: v3.0.2", "apiVersion: v2.2.2", "only ODCS v3 contracts are supported"),
    ("kind: DataContract", "kind: DataProduct", "(ODCS v3 schema)"),
    ("      - name: sku\n", "      - name: quantity\n", "order_lines.quantity: duplicate column"),
])
def test_diff_still_requires_a_valid_odcs_v3_document(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    path = _write(tmp_path, OTHERS.replace(old, new, 1))
    with pytest.raises(ContractError) as info:
        load_any(path)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    result = runner.invoke(app, ["diff", str(path), str(path)])
    assert result.exit_code == 2 and fragment in result.stderr


def test_nested_properties_are_columns_of_their_own(tmp_path: Path) -> None:
    nested = OTHERS.replace("""      - name: note
        logicalType: string
        physicalType: varchar(200)
""", """      - name: shipping
        logicalType: object
        properties:
          - name: city
            logicalType: string
            physicalType: varchar(80)
      - name: tags
        logicalType: array
        items:
          logicalType: string
          physicalType: varchar(16)
""")
    orders = load_any(_write(tmp_path, nested))[1]
    assert orders.column_names[-4:] == ("shipping", "shipping.city", "tags", "tags[]")
    narrower = nested.replace("physicalType: varchar(80)", "physicalType: varchar(40)")
    changes = diff([orders], [load_any(_write(tmp_path, narrower, "new.yaml"))[1]])
    assert [(c.rule, c.column) for c in changes] == [("type-narrowed", "shipping.city")]


def _col(physical: str | None, logical: str | None = "string") -> Column:
    text, base, length, precision, scale = _loose_type(physical)
    return Column("c", logical, text, base, length, precision, scale, False, False, None, "")


@pytest.mark.parametrize(("old", "new", "rule"), [
    ("char(2)", "char(3)", "type-widened"),
    ("char(3)", "char(2)", "type-narrowed"),
    ("char(3)", "varchar(3)", "type-widened"),
    ("varchar(3)", "char(3)", "type-narrowed"),  # values get blank-padded
    ("char(3)", "text", "type-widened"),
    ("CHARACTER(3)", "bpchar(3)", None),
    ("char", "char(1)", None),
    ("varchar", "varchar(10)", "type-narrowed"),  # unbounded -> bounded
    ("varchar(10)", "character varying", "type-widened"),
    ("numeric", "decimal(12,2)", "type-narrowed"),
    ("decimal(12,2)", "numeric", "type-widened"),
    ("bigint(20)", "bigint", None),  # MySQL display width
    ("nvarchar(10)", "nvarchar(20)", "type-widened"),
    ("nvarchar(20)", "varchar(20)", "type-family-changed"),
    ("STRING", "text", None),
    (None, "varchar(10)", "type-narrowed"),  # a physical type appears: a limit
    ("varchar(10)", None, "type-widened"),
])
def test_type_rules_for_types_of_others(old: str | None, new: str | None, rule: str | None) -> None:
    changes = diff([_contract_with(_col(old))], [_contract_with(_col(new))])
    assert [c.rule for c in changes] == ([rule] if rule else [])


def test_a_logical_type_stated_on_one_side_only_is_no_change() -> None:
    assert diff([_contract_with(_col("text", None))], [_contract_with(_col("text"))]) == []
    assert [c.rule for c in diff([_contract_with(_col("text", "date"))], [_contract_with(_col("text"))])] == [
        "type-family-changed"]


def _contract_with(column: Column) -> Contract:
    return Contract(table="t", major=1, version="1", owner_service=None, description="", grain="", primary_key=(),
                    columns=(column,), delete_semantics=None, freshness_seconds=None, status=None, strict=False,
                    physical="t")


# --- diff across majors ---------------------------------------------------------------------------------------


def test_diff_of_two_majors_compares_their_columns() -> None:
    result = runner.invoke(app, ["diff", str(REPO_SCHEMA / "orders" / "v1.yaml"), str(REPO_SCHEMA / "orders" / "v2.yaml")])
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "table-removed" not in out and "table-added" not in out
    assert "major-changed" in out and "orders_v2: compared with orders_v1" in out
    assert "BREAKING   column-renamed             orders_v2.status: looks renamed to order_status" in out
    assert "BREAKING   enum-value-added           orders_v2.order_status: enum value(s) ['REFUNDED']" in out
    assert "orders_v2.placed_at: looks renamed to order_placed_at" in out
    assert "COMPATIBLE column-added-optional      orders_v2.sales_channel" in out
    # the other way round too (a reader going back), and the same major against itself is no change
    assert runner.invoke(app, ["diff", str(REPO_SCHEMA / "orders" / "v2.yaml"),
                               str(REPO_SCHEMA / "orders" / "v1.yaml")]).exit_code == 1
    same = runner.invoke(app, ["diff", str(REPO_SCHEMA / "orders" / "v2.yaml"), str(REPO_SCHEMA / "orders" / "v2.yaml")])
    assert same.exit_code == 0 and "0 change(s)" in same.stdout


def test_folders_and_the_lock_still_match_by_major(tmp_path: Path) -> None:
    root = tmp_path / "reporting_schema"
    shutil.copytree(REPO_SCHEMA, root)
    (root / "orders" / "v1.yaml").unlink()  # removing v1 while v2 exists is a removal, not a change of v2
    result = runner.invoke(app, ["diff", str(REPO_SCHEMA), str(root), "--today", "2027-01-01"])
    assert result.exit_code == 1 and "BREAKING   table-removed              orders_v1" in result.stdout
    assert "major-changed" not in result.stdout
    assert [c.rule for c in check(root, today=dt.date(2027, 1, 1))] == ["table-removed"]
    v1, v2 = load_contract(REPO_SCHEMA / "orders" / "v1.yaml"), load_contract(REPO_SCHEMA / "orders" / "v2.yaml")
    assert [c.rule for c in diff([v1], [v2])] == ["table-removed", "table-added"]  # by major unless asked
    assert diff([v1], [v2], across_majors=True)[0].rule == "major-changed"


def test_several_candidate_majors_are_not_paired(tmp_path: Path) -> None:
    v1 = load_contract(REPO_SCHEMA / "orders" / "v1.yaml")
    v2 = load_contract(REPO_SCHEMA / "orders" / "v2.yaml")
    v3 = dataclasses.replace(v2, major=3, version="3.0.0")
    assert [c.rule for c in diff([v1], [v2, v3], across_majors=True)] == ["table-removed", "table-added", "table-added"]


# --- servers --------------------------------------------------------------------------------------------------


def test_every_repo_contract_names_the_reporting_database_of_the_bundled_stack() -> None:
    estate = yaml.safe_load((REPO_SCHEMA.parent / "reporting.yaml").read_text())
    pg = estate["reporting"]["postgres"]
    for path in sorted(REPO_SCHEMA.glob("*/v*.yaml")):
        servers = yaml.safe_load(path.read_text())["servers"]
        assert [{k: s[k] for k in ("server", "type", "host", "port", "database", "schema")} for s in servers] == [
            {"server": "reporting", "type": "postgres", "host": pg["host"], "port": pg["port"],
             "database": pg["database"], "schema": "reporting"}], path


def test_a_servers_entry_is_documentation_and_must_point_at_schema_reporting(tmp_path: Path) -> None:
    bare = ORDERS_V1.split("servers:\n", 1)[0] + "slaProperties:\n" + ORDERS_V1.split("\nslaProperties:\n", 1)[1]
    assert "servers:" not in bare
    (with_servers,) = load_contracts_file(_write(tmp_path, ORDERS_V1, "b.yaml"))
    assert load_contracts_file(_write(tmp_path, bare)) == [dataclasses.replace(with_servers, path=tmp_path / "contract.yaml")]
    wrong = ORDERS_V1.replace("    schema: reporting\n", "    schema: public\n", 1)
    with pytest.raises(ContractError, match="server 'reporting': the contract's tables live in schema 'reporting', "
                                            "not 'public'") as info:
        load_contract(_write(tmp_path, wrong, "orders/v1.yaml"))
    assert info.value.line == next(i for i, line in enumerate(wrong.splitlines(), 1) if "schema: public" in line)
