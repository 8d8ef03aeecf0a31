"""Loading and validating contracts: the repo's contracts, and bad input with file:line errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from contract_testkit import REPO_SCHEMA

from pipelines.contract.model import (
    Contract,
    ContractError,
    load_contract,
    load_contracts,
    load_contracts_file,
)
from pipelines.contract.sqltypes import parse_physical_type

pytestmark = pytest.mark.unit

ORDERS_V1 = (REPO_SCHEMA / "orders" / "v1.yaml").read_text()


def test_repo_contracts_are_the_published_tables() -> None:
    contracts = load_contracts()
    files = sorted(f"{p.parent.name}_v{p.stem.removeprefix('v')}" for p in REPO_SCHEMA.glob("*/v*.yaml"))
    assert files and [c.physical_name for c in contracts] == files
    for c in contracts:
        assert c.grain.startswith("One row per"), c.physical_name
        assert c.freshness_seconds == 300
        assert all(col.description for col in c.columns)


def test_orders_v1_and_v2_follow_the_brief() -> None:
    v1 = load_contract(REPO_SCHEMA / "orders" / "v1.yaml")
    v2 = load_contract(REPO_SCHEMA / "orders" / "v2.yaml")
    assert (v1.status, v1.deprecation_date) == ("deprecated", dt.date(2027, 6, 30))
    assert (v2.status, v2.deprecation_date) == ("active", None)
    assert v2.column_names == ("order_id", "customer_id", "order_status", "total_amount", "currency",
                               "order_placed_at", "updated_at", "sales_channel")
    assert v2.column("order_status").enum == ("PLACED", "PAID", "PACKED", "SHIPPED", "CANCELLED", "REFUNDED")
    assert v2.column("total_amount").physical_type == "decimal(12,2)"
    assert (v2.column("total_amount").precision, v2.column("total_amount").scale) == (12, 2)
    assert v2.column("sales_channel").required is False and v2.column("sales_channel").enum is None
    assert (v2.owner_service, v2.delete_semantics, v2.primary_key) == ("orders", "soft", ("order_id",))


def test_composite_keys_hard_deletes_and_classification() -> None:
    by_name = {c.physical_name: c for c in load_contracts()}
    assert by_name["order_lines_v1"].primary_key == ("order_id", "line_number")
    assert by_name["stock_levels_v1"].primary_key == ("sku", "location")
    assert by_name["stock_levels_v1"].delete_semantics == "hard"
    customers = by_name["customers_v1"]
    assert {c.name for c in customers.columns if c.classification == "pii"} == {"email", "full_name"}
    assert customers.column("email").length == 254


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BIGINT", ("bigint", None, None, None)),
        ("int8", ("bigint", None, None, None)),
        ("int4", ("integer", None, None, None)),
        ("int", ("integer", None, None, None)),
        ("int2", ("smallint", None, None, None)),
        ("numeric(12, 2)", ("decimal", None, 12, 2)),
        ("decimal(10)", ("decimal", None, 10, 0)),
        ("character  varying(64)", ("varchar", 64, None, None)),
        ("timestamp with time zone", ("timestamptz", None, None, None)),
        ("timestamp without time zone", ("timestamp", None, None, None)),
        ("bool", ("boolean", None, None, None)),
        ("double precision", ("double", None, None, None)),
        ("jsonb", ("json", None, None, None)),
        ("uuid", ("uuid", None, None, None)),
    ],
)
def test_physical_type_aliases_are_normalised(text: str, expected: tuple) -> None:
    t = parse_physical_type(text)
    assert (t.base, t.length, t.precision, t.scale) == expected


@pytest.mark.parametrize("text", ["varchr(16)", "varchar", "decimal", "decimal(40,2)", "decimal(5,6)",
                                  "bigint(8)", "money", "varchar(0)", "int; drop table x"])
def test_unsupported_physical_types_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_physical_type(text)


def _write(tmp_path: Path, text: str, name: str = "v1.yaml", folder: str = "orders") -> Path:
    path = tmp_path / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BAD = [
    # (id, old, new, marker on the expected line (or None), expected message fragment)
    ("typo_key", "        required: true\n        primaryKey: true", "        requird: true\n        primaryKey: true",
     "requird", "orders.order_id (schema[0].properties[0]): unknown key 'requird'"),
    ("invalid_yaml", "  - name: orders\n", "  - name: orders: [\n", "name: orders: [", "invalid YAML"),
    ("unknown_type", "physicalType: decimal(12,2)", "physicalType: decimel(12,2)", "decimel",
     "orders.total_amount: unknown physicalType 'decimel(12,2)'"),
    ("injection_column", "      - name: currency", "      - name: \"currency; DROP TABLE x\"", "DROP TABLE",
     "not a plain SQL identifier"),
    ("injection_table", "  - name: orders\n", "  - name: \"orders x; --\"\n", "orders x;", "table name 'orders x; --'"),
    ("uppercase_column", "      - name: currency", "      - name: Currency", "Currency", "not a plain SQL identifier"),
    ("duplicate_column", "      - name: currency", "      - name: total_amount  # dup", "# dup",
     "orders.total_amount: duplicate column"),
    ("missing_primary_key", "        primaryKey: true\n        primaryKeyPosition: 1\n", "", "  - name: orders",
     "missing primary key"),
    ("optional_primary_key", "        required: true\n        primaryKey: true", "        required: false\n        primaryKey: true",
     "required: false", "orders.order_id: primary key column must be required"),
    ("major_mismatch", "version: 1.0.1", "version: 2.0.0", "version: 2.0.0", "does not match file name v1.yaml"),
    ("physical_name_mismatch", "physicalName: orders_v1", "physicalName: orders_v9", "orders_v9",
     "physicalName must be orders_v1"),
    ("reserved_name", "      - name: currency", "      - name: _op", "name: _op", "reserved for provenance"),
    ("unknown_custom_property", "property: deleteSemantics", "property: deleteSemantic", "deleteSemantic",
     "unknown customProperties entry 'deleteSemantic'"),
    ("bad_delete_semantics", "        value: soft", "        value: sometimes", "sometimes", "deleteSemantics must be one of"),
    ("bad_classification", "        classification: public\n        description: Order identifier",
     "        classification: secret\n        description: Order identifier", "secret", "classification 'secret'"),
    ("logical_mismatch", "logicalType: number", "logicalType: string  # wrong", "# wrong",
     "does not match physicalType decimal(12,2)"),
    ("enum_not_string", "- value: PAID", "- value: 7", "- value: 7", "enum values must be non-empty strings"),
    ("enum_too_long", "- value: PAID", "- value: PAID_IN_FULL_BY_CARD", "PAID_IN_FULL", "longer than varchar(16)"),
    ("deprecated_without_date", "  - property: deprecationDate\n    value: \"2027-06-30\"\n", "", "status: deprecated",
     "deprecationDate is required"),
    ("bad_date", "value: \"2027-06-30\"", "value: \"2027-02-30\"", "2027-02-30", "is not a date"),
    ("bad_freshness", "unit: m", "unit: fortnight", "- property: latency", "latency needs a positive number"),
    ("duplicate_yaml_key", "kind: DataContract\n", "kind: DataContract\nkind: DataContract\n", None, "duplicate key 'kind'"),
    ("not_semver", "version: 1.0.1", "version: one", "version: one", "must be semver"),
]


@pytest.mark.parametrize(("old", "new", "marker", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_contract_is_one_line_error_with_file_and_line(tmp_path: Path, old: str, new: str, marker: str | None,
                                                           fragment: str) -> None:
    assert old in ORDERS_V1
    text = ORDERS_V1.replace(old, new, 1)
    path = _write(tmp_path, text)

    with pytest.raises(ContractError) as info:
        load_contract(path)

    message = str(info.value)
    assert "\n" not in message
    assert fragment in message
    assert message.startswith(str(path))
    if marker is not None:
        assert info.value.line == _line_of(text, marker), message
    else:
        assert info.value.line == 3


def test_table_must_match_its_folder(tmp_path: Path) -> None:
    path = _write(tmp_path, ORDERS_V1, folder="payments")
    with pytest.raises(ContractError, match="does not match its folder 'payments'"):
        load_contract(path)


def test_folder_layout_is_strict(tmp_path: Path) -> None:
    _write(tmp_path, ORDERS_V1)
    _write(tmp_path, ORDERS_V1, name="v1.yml")
    with pytest.raises(ContractError, match=r"laid out as <table>/v<major>\.yaml"):
        load_contracts(tmp_path)


def test_files_with_other_names_skip_location_checks_and_may_hold_several_documents(tmp_path: Path) -> None:
    v2 = (REPO_SCHEMA / "orders" / "v2.yaml").read_text()
    path = tmp_path / "snapshot.yaml"
    path.write_text(ORDERS_V1 + "---\n" + v2)
    assert [c.physical_name for c in load_contracts_file(path)] == ["orders_v1", "orders_v2"]
    empty = tmp_path / "none.yaml"
    empty.write_text("# nothing\n")
    assert load_contracts_file(empty) == []
    with pytest.raises(ContractError, match="exactly one contract document, found 0"):
        load_contract(empty)


def test_invariants_hold_for_contracts_built_in_code() -> None:
    contract = load_contract(REPO_SCHEMA / "orders" / "v1.yaml")
    with pytest.raises(ContractError, match="orders.missing_col: primary key column does not exist"):
        dataclasses.replace(contract, primary_key=("missing_col",))
    with pytest.raises(ContractError, match="missing primary key"):
        dataclasses.replace(contract, primary_key=())
    with pytest.raises(ContractError, match="duplicate column"):
        dataclasses.replace(contract, columns=contract.columns + contract.columns[:1])
    with pytest.raises(ContractError, match="not a plain SQL identifier"):
        dataclasses.replace(contract, table="orders; drop table x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        contract.table = "other"  # type: ignore[misc]


def test_contract_accessors() -> None:
    contract: Contract = load_contract(REPO_SCHEMA / "order_lines" / "v1.yaml")
    assert contract.physical_name == "order_lines_v1"
    assert contract.column("quantity").base_type == "integer"
    with pytest.raises(KeyError):
        contract.column("nope")
